#pragma once
// The Python half of the "python" language (backends/python.cpp): source text compiled once per
// process.

namespace dango::script {

// The Python half: the streams that route output, and the runner that executes one script.
// Compiled once per process into the module "dango_script" (kept out of sys.modules).
inline constexpr const char* kRunnerSource = R"PY(
import ast, io, sys, traceback

RUNNER_FILE = "<dango-script-runner>"
SCRIPT_FILE = "<script>"


class TimeLimitExceeded(BaseException):
    """Raised in a script that ran past its interpreter's time limit."""


class Output(io.TextIOBase):
    """sys.stdout / sys.stderr: the output of the script on this OS thread, if any."""

    def __init__(self, previous):
        self._previous = previous

    encoding = "utf-8"
    errors = "backslashreplace"

    def writable(self):
        return True

    def isatty(self):
        return False

    def close(self):  # a script closing sys.stdout must not close it for the next ones
        pass

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError("write() argument must be str, not " + type(text).__name__)
        if sink_write(text):
            return len(text)
        return self._previous.write(text) if self._previous is not None else len(text)

    def flush(self):
        if not sink_active() and self._previous is not None:
            self._previous.flush()

    def fileno(self):
        if sink_active() or self._previous is None:
            raise io.UnsupportedOperation("a script's output has no file descriptor")
        return self._previous.fileno()


class Input(io.TextIOBase):
    """sys.stdin: empty for scripts (they must not read the server's standard input)."""

    def __init__(self, previous):
        self._previous = previous

    def readable(self):
        return True

    def close(self):  # exit() closes sys.stdin before raising SystemExit
        pass

    def read(self, size=-1):
        if sink_active() or self._previous is None:
            return ""
        return self._previous.read(size)

    def readline(self, size=-1):
        if sink_active() or self._previous is None:
            return ""
        return self._previous.readline(size)


def install_streams():
    sys.stdout = Output(sys.stdout)
    sys.stderr = Output(sys.stderr)
    sys.stdin = Input(sys.stdin)


def describe(error):
    """The exception as Python prints it, without the runner's own frames."""
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == RUNNER_FILE:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(error), error, tb))


# Compiled scripts by source, shared by every interpreter (code objects hold no globals): a
# script sent again skips parsing and compiling. Scripts up to CACHE_MAX_SOURCE bytes are kept;
# the oldest entry goes past CACHE_SIZE.
CACHE_SIZE = 256
CACHE_MAX_SOURCE = 16384
_compiled = {}


def compiled(source):
    """(body, tail) of source: the code of all but a final expression, and of that expression."""
    code = _compiled.get(source)
    if code is not None:
        return code
    tree = ast.parse(source, SCRIPT_FILE)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    body = compile(tree, SCRIPT_FILE, "exec", dont_inherit=True)
    tail = None if last is None else compile(last, SCRIPT_FILE, "eval", dont_inherit=True)
    code = (body, tail)
    if len(source) <= CACHE_MAX_SOURCE:
        if len(_compiled) >= CACHE_SIZE:
            del _compiled[next(iter(_compiled))]
        _compiled[source] = code
    return code


def run(source, env):
    """Runs source (bytes) in env; returns (True, result) or (False, error text)."""
    try:
        body, tail = compiled(source)
    except TimeLimitExceeded:
        raise
    except BaseException as error:
        if isinstance(error, SyntaxError) and error.text is not None and len(error.text) > 400:
            error.text = None  # a long line (generated code) is left out of the message
        return False, "".join(traceback.format_exception_only(type(error), error))
    try:
        exec(body, env)
        value = None if tail is None else eval(tail, env)
        return True, "" if value is None else str(value)
    except TimeLimitExceeded:
        raise
    except BaseException as error:
        return False, describe(error)
)PY";

}  // namespace dango::script
