// The "python" language: the system's CPython 3, embedded. One runtime per process, shared by
// every Python interpreter: each interpreter is a globals dictionary of its own (a fresh
// "__main__"-like namespace with __builtins__), so scripts see what earlier scripts of the same
// interpreter defined and never another's; sub-interpreters are not used (extension modules
// such as numpy do not support them). Imported modules, sys and the heap are shared, and
// scripts of different interpreters take turns on the GIL: they run in parallel only while one
// of them is inside a C call that releases it.
//
// The runtime starts on first use, on a thread of its own (the watchdog below), without signal
// handlers (the server owns its signals; and since no script ever runs on Python's "main
// thread", signal.signal fails in scripts). It is never finalised: Py_FinalizeEx with other
// interpreters' worker threads still holding thread states, or a daemon thread a script
// started, is not safe, and extension modules cannot be reloaded after it; the process's end
// reclaims it.
//
// What a script prints (sys.stdout, sys.stderr) goes to its execution's output: sys.stdout and
// sys.stderr are replaced once by streams that write to the output of the script running on the
// calling OS thread, and to the previous streams elsewhere (threads a script starts included).
// sys.stdin reads as empty in scripts. A script that ends with an expression has its value as
// the result, as an interactive interpreter shows it.
//
// Time limit: a watchdog thread stops a script once its deadline passes (see Watchdog), and the
// interpreter keeps what the script did until then. Limitation: a script inside a long C call
// (time.sleep(100), a socket read, sum(range(10**12)), a backtracking regular expression) is
// stopped only when that call returns; one that keeps the GIL meanwhile also holds up the other
// Python interpreters of the process. This is not a sandbox: a script can still end the process
// (os._exit, os.kill) or read files, as the server's user; only the ways that end it by
// accident (sys.exit, exit) are turned into errors.

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "dango/common/config.hpp"
#include "services/script/backend.hpp"
#include "services/script/backends/python_runner.hpp"

namespace dango::script {
namespace {

using Clock = std::chrono::steady_clock;

// The longest error message a script's exception gives (see PythonBackend::shortened).
constexpr size_t kMaxErrorSize = 64 << 10;

// How often the watchdog raises again in a script past its deadline that keeps running.
constexpr auto kRaiseInterval = std::chrono::milliseconds(5);

struct Decref {
  void operator()(PyObject* object) const { Py_XDECREF(object); }
};
// An owned reference; destroy it with the GIL held.
using Ref = std::unique_ptr<PyObject, Decref>;

// Holds the GIL (creating the calling OS thread's Python thread state if needed).
class Gil {
 public:
  Gil() : state_(PyGILState_Ensure()) {}
  ~Gil() { PyGILState_Release(state_); }
  Gil(const Gil&) = delete;
  Gil& operator=(const Gil&) = delete;

 private:
  PyGILState_STATE state_;
};

// UTF-8 of a str; characters UTF-8 cannot hold (lone surrogates) come out escaped.
std::string to_utf8(PyObject* text) {
  if (text == nullptr || !PyUnicode_Check(text)) return "(not a str)";
  Ref bytes{PyUnicode_AsEncodedString(text, "utf-8", "backslashreplace")};
  if (!bytes) {
    PyErr_Clear();
    return "(text not encodable)";
  }
  return std::string(PyBytes_AS_STRING(bytes.get()), PyBytes_GET_SIZE(bytes.get()));
}

// The pending Python exception as "Type: message", cleared (for the runtime's own failures).
std::string take_python_error() {
  PyObject* type = nullptr;
  PyObject* value = nullptr;
  PyObject* traceback = nullptr;
  PyErr_Fetch(&type, &value, &traceback);
  Ref owned_type{type}, owned_value{value}, owned_traceback{traceback};
  if (type == nullptr) return "unknown error";
  std::string text = reinterpret_cast<PyTypeObject*>(type)->tp_name;
  if (value != nullptr) {
    Ref message{PyObject_Str(value)};
    if (message) text += ": " + to_utf8(message.get());
    PyErr_Clear();
  }
  return text;
}

// The output of the script running on this OS thread (null between scripts). Thread-local
// because the backends of different interpreters run scripts on different OS threads at once.
thread_local OutputSink* current_sink = nullptr;

// dango_script.sink_write(text): appends to the current script's output; False if none.
PyObject* sink_write(PyObject*, PyObject* text) {
  OutputSink* sink = current_sink;
  if (sink == nullptr) Py_RETURN_FALSE;
  if (!PyUnicode_Check(text)) {
    PyErr_SetString(PyExc_TypeError, "sink_write() expects a str");
    return nullptr;
  }
  Ref bytes{PyUnicode_AsEncodedString(text, "utf-8", "backslashreplace")};
  if (!bytes) return nullptr;
  try {  // no C++ exception may cross the interpreter's frames
    sink->append(std::string_view(PyBytes_AS_STRING(bytes.get()), PyBytes_GET_SIZE(bytes.get())));
  } catch (const std::bad_alloc&) {
    return PyErr_NoMemory();
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
    return nullptr;
  }
  Py_RETURN_TRUE;
}

// dango_script.sink_active(): whether a script runs on this OS thread.
PyObject* sink_active(PyObject*, PyObject*) { return PyBool_FromLong(current_sink != nullptr); }

PyMethodDef kSinkFunctions[] = {
    {"sink_write", &sink_write, METH_O, "Appends text to the running script's output."},
    {"sink_active", &sink_active, METH_NOARGS, "Whether a script runs on this OS thread."},
    {nullptr, nullptr, 0, nullptr}};

// The trace function of a script past its deadline: raises TimeLimitExceeded (`exception`) at
// each new line and call, so that a handler catching it cannot run either.
int raise_time_limit(PyObject* exception, PyFrameObject*, int what, PyObject*) {
  if (what != PyTrace_LINE && what != PyTrace_CALL) return 0;
  PyErr_SetNone(exception);
  return -1;
}

// Stops the scripts past their deadline. One per process. Once a script's deadline passes, the
// watchdog raises TimeLimitExceeded in its thread (PyThreadState_SetAsyncExc: seen at the next
// loop iteration or call) and sets a trace function on it that raises again at every line (so
// that `except BaseException: pass` in a loop cannot swallow it), repeating every few ms until
// the script has left; the trace function goes through _PyEval_SetTrace, CPython's call for
// another thread's trace (public from 3.12 only as PyEval_SetTraceAllThreads, for all threads).
//
// Lock order: the GIL, then mutex_ (scripts enter and leave with the GIL held; the watchdog never
// waits for the GIL while holding mutex_). So once a script has left, with the GIL held, nothing
// can raise in its thread any more, and leave() withdraws what was raised but not yet seen.
class Watchdog {
 public:
  struct Run {
    PyThreadState* state;  // the script's thread's
    Clock::time_point deadline;
    bool fired = false;
  };

  explicit Watchdog(PyObject* exception) : exception_(exception) {}

  // Both with the GIL held, on the script's thread. leave() returns whether the time limit fired.
  void enter(Run* run) {
    std::lock_guard lock(mutex_);
    runs_.push_back(run);
    if (run->deadline < wake_at_) changed_.notify_one();  // most scripts need no wake-up
  }
  bool leave(Run* run) {
    {
      std::lock_guard lock(mutex_);
      std::erase(runs_, run);
    }
    if (run->fired) {
      PyThreadState_SetAsyncExc(PyThread_get_thread_ident(), nullptr);
      PyEval_SetTrace(nullptr, nullptr);
    }
    return run->fired;
  }

  // The watchdog thread's loop; never returns. Called without the GIL.
  [[noreturn]] void loop() {
    std::unique_lock lock(mutex_);
    for (;;) {
      const auto now = Clock::now();
      auto next = Clock::time_point::max();
      bool due = false;
      for (const Run* run : runs_) {
        due = due || run->deadline <= now;
        next = std::min(next, run->deadline);
      }
      wake_at_ = due ? Clock::time_point::min() : next;
      if (!due) {
        if (next == Clock::time_point::max()) {
          changed_.wait(lock);
        } else {
          changed_.wait_until(lock, next);
        }
        continue;
      }
      lock.unlock();
      {
        Gil gil;
        lock.lock();
        for (Run* run : runs_) {
          if (run->deadline <= now) stop(run);
        }
        lock.unlock();
      }
      std::this_thread::sleep_for(kRaiseInterval);
      lock.lock();
    }
  }

 private:
  // With the GIL and mutex_ held.
  void stop(Run* run) {
    run->fired = true;
    PyThreadState_SetAsyncExc(run->state->thread_id, exception_);
    if (_PyEval_SetTrace(run->state, &raise_time_limit, exception_) != 0) PyErr_Clear();
  }

  PyObject* exception_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Run*> runs_;
  // When the watchdog looks again by itself (min while it is stopping scripts).
  Clock::time_point wake_at_ = Clock::time_point::min();
};

// The process's CPython runtime and the objects every interpreter uses.
class Runtime {
 public:
  // Starts the runtime on first call (thread-safe). Throws Error(kInternal) if it cannot start.
  static Runtime& get() {
    struct Startup {
      Runtime* runtime = nullptr;
      std::string error;
    };
    // Never destroyed: the watchdog thread uses it until the process ends (see the top).
    static const Startup startup = []() -> Startup {
      try {
        return {new Runtime(), ""};
      } catch (const std::exception& e) {
        return {nullptr, e.what()};
      }
    }();
    if (startup.runtime == nullptr) {
      throw Error(ErrorCode::kInternal, "python: the runtime did not start: " + startup.error);
    }
    return *startup.runtime;
  }

  PyObject* run() const { return run_; }
  Watchdog& watchdog() { return *watchdog_; }

 private:
  Runtime() {
    std::promise<void> started;
    std::future<void> ready = started.get_future();
    std::thread thread([this, &started] {
      try {
        start_python();
      } catch (...) {
        started.set_exception(std::current_exception());
        return;
      }
      started.set_value();
      watchdog_->loop();
    });
    try {
      ready.get();
    } catch (...) {
      thread.join();
      throw;
    }
    thread.detach();
  }

  // On the watchdog thread, which becomes Python's main thread (when this process is not
  // itself a Python program that embeds Dango) and then leaves the GIL to the interpreters.
  void start_python() {
    const bool own = !Py_IsInitialized();
    if (own) {
      PyPreConfig preconfig;
      PyPreConfig_InitPythonConfig(&preconfig);
      preconfig.configure_locale = 0;  // leave the server's locale alone
      preconfig.utf8_mode = 1;
      check(Py_PreInitialize(&preconfig));
      PyConfig config;
      PyConfig_InitPythonConfig(&config);
      config.install_signal_handlers = 0;
      config.configure_c_stdio = 0;
      config.parse_argv = 0;
      const PyStatus status = Py_InitializeFromConfig(&config);
      PyConfig_Clear(&config);
      check(status);
    }
    std::string error;
    {
      Gil gil;
      if (!load_runner()) error = take_python_error();
    }
    if (own) PyEval_SaveThread();
    if (!error.empty()) throw std::runtime_error("cannot load the script runner: " + error);
  }

  static void check(const PyStatus& status) {
    if (PyStatus_Exception(status)) {
      throw std::runtime_error(status.err_msg != nullptr ? status.err_msg
                                                         : "initialisation failed");
    }
  }

  // Compiles kRunnerSource into a module and installs its streams; false with a Python error.
  bool load_runner() {
    Ref module{PyModule_New("dango_script")};
    if (!module || PyModule_AddFunctions(module.get(), kSinkFunctions) != 0) return false;
    PyObject* globals = PyModule_GetDict(module.get());  // borrowed
    if (PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins()) != 0) return false;
    Ref code{Py_CompileString(kRunnerSource, "<dango-script-runner>", Py_file_input)};
    if (!code) return false;
    Ref done{PyEval_EvalCode(code.get(), globals, globals)};
    if (!done) return false;
    Ref installed{PyObject_CallMethod(module.get(), "install_streams", nullptr)};
    if (!installed) return false;
    run_ = PyObject_GetAttrString(module.get(), "run");
    PyObject* exception = PyObject_GetAttrString(module.get(), "TimeLimitExceeded");
    if (run_ == nullptr || exception == nullptr) return false;
    watchdog_ = std::make_unique<Watchdog>(exception);
    module_ = module.release();
    return true;
  }

  // Strong references, kept for the process's lifetime.
  PyObject* module_ = nullptr;
  PyObject* run_ = nullptr;
  std::unique_ptr<Watchdog> watchdog_;
};

// sys.stdout, sys.stderr and sys.stdin as they were, put back when a script ends (a script may
// replace them). Plain C calls: no Python code runs, so nothing can interrupt the restoring.
class SavedStreams {
 public:
  SavedStreams() {
    for (size_t i = 0; i < kNames.size(); ++i) {
      saved_[i] = PySys_GetObject(kNames[i]);  // borrowed
      Py_XINCREF(saved_[i]);
    }
  }
  ~SavedStreams() {
    for (size_t i = 0; i < kNames.size(); ++i) {
      if (saved_[i] == nullptr) continue;
      if (PySys_GetObject(kNames[i]) != saved_[i]) PySys_SetObject(kNames[i], saved_[i]);
      Py_DECREF(saved_[i]);
    }
  }
  SavedStreams(const SavedStreams&) = delete;
  SavedStreams& operator=(const SavedStreams&) = delete;

 private:
  static constexpr std::array<const char*, 3> kNames{"stdout", "stderr", "stdin"};
  std::array<PyObject*, 3> saved_{};
};

// Makes `sink` the output of what runs on this OS thread, for the guard's lifetime.
class SinkScope {
 public:
  explicit SinkScope(OutputSink& sink) { current_sink = &sink; }
  ~SinkScope() { current_sink = nullptr; }
  SinkScope(const SinkScope&) = delete;
  SinkScope& operator=(const SinkScope&) = delete;
};

// The calling thread's script under the watchdog's eye, for the guard's lifetime (GIL held).
class Watch {
 public:
  Watch(Watchdog& watchdog, Clock::time_point deadline)
      : watchdog_(watchdog), run_{PyThreadState_Get(), deadline} {
    watchdog_.enter(&run_);
  }
  ~Watch() {
    if (!left_) leave();
  }
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;

  // Ends the watch; whether the time limit fired.
  bool leave() {
    left_ = true;
    return watchdog_.leave(&run_);
  }

 private:
  Watchdog& watchdog_;
  Watchdog::Run run_;
  bool left_ = false;
};

class PythonBackend : public Backend {
 public:
  explicit PythonBackend(const InterpreterConfig& config)
      : time_limit_(config.time_limit) {
    if (config.memory_limit != 0) {
      config::fail("memory_limit",
                   "not supported by the python language (CPython has one heap per process, "
                   "shared by all its interpreters); use 0");
    }
    runtime_ = &Runtime::get();
    const PyGILState_STATE state = PyGILState_Ensure();
    std::string error;
    if (!make_globals()) {
      error = take_python_error();
      Py_CLEAR(globals_);
    }
    // This thread's Python thread state is kept (the GIL released) until the destructor: made
    // anew for each script, it cost ~10 µs (its frame stack is mmap'ed and unmapped each time).
    if (error.empty() && state == PyGILState_UNLOCKED) {
      kept_state_ = PyEval_SaveThread();
      owner_ = std::this_thread::get_id();
    } else {
      PyGILState_Release(state);
    }
    if (!error.empty()) {
      throw Error(ErrorCode::kInternal, "cannot create its globals: " + error);
    }
  }

  ~PythonBackend() override {
    clear_globals();
    // A backend destroyed on another thread than its own (against the provider's rule) leaves
    // its thread state to that thread.
    if (kept_state_ != nullptr && std::this_thread::get_id() == owner_) {
      PyEval_RestoreThread(kept_state_);
      PyGILState_Release(PyGILState_UNLOCKED);
    }
  }

  std::string execute(std::string_view code, const Arguments& args, Clock::time_point deadline,
                      OutputSink& output) override {
    Gil gil;
    Ref source{PyBytes_FromStringAndSize(code.data(), static_cast<Py_ssize_t>(code.size()))};
    if (!source || !set_args(args)) throw Error(ErrorCode::kInternal, take_python_error());
    return finish(run(source.get(), deadline, output));
  }

 private:
  // What the runner gave: its (ok, text) pair; or none, with `stray` naming the exception that
  // escaped it (it reports the script's own, so this is one raised while reporting).
  struct Outcome {
    Ref pair;
    std::string stray;
    bool timed_out = false;
  };

  // Sets the global `args` to a new dict of the arguments (bytes that are not UTF-8 kept as
  // surrogate escapes). With the GIL held.
  bool set_args(const Arguments& args) {
    Ref dict{PyDict_New()};
    if (!dict) return false;
    for (const auto& [key, value] : args) {
      Ref text{PyUnicode_DecodeUTF8(value.data(), static_cast<Py_ssize_t>(value.size()),
                                    "surrogateescape")};
      if (!text || PyDict_SetItemString(dict.get(), key.c_str(), text.get()) != 0) return false;
    }
    return PyDict_SetItemString(globals_, "args", dict.get()) == 0;
  }

  bool make_globals() {
    globals_ = PyDict_New();
    if (globals_ == nullptr) return false;
    Ref main{PyUnicode_FromString("__main__")};
    return main && PyDict_SetItemString(globals_, "__name__", main.get()) == 0 &&
           PyDict_SetItemString(globals_, "__builtins__", PyEval_GetBuiltins()) == 0;
  }

  // Clearing breaks the cycles between the globals and the functions defined in them; the
  // objects' __del__ methods run here, under the time limit like a script, and what they print
  // is dropped (it must not reach the server's own output).
  void clear_globals() {
    Gil gil;
    OutputSink discarded(0);
    {
      Watch watch(runtime_->watchdog(), Clock::now() + time_limit_);
      SinkScope sink(discarded);
      PyDict_Clear(globals_);
      Py_CLEAR(globals_);
    }
    PyErr_Clear();
  }

  // With the GIL held.
  Outcome run(PyObject* source, Clock::time_point deadline, OutputSink& output) {
    Outcome outcome;
    Watch watch(runtime_->watchdog(), deadline);
    {
      SavedStreams streams;
      SinkScope sink(output);
      outcome.pair.reset(PyObject_CallFunctionObjArgs(runtime_->run(), source, globals_, nullptr));
    }
    if (!outcome.pair) outcome.stray = escaped_exception();
    outcome.timed_out = watch.leave();
    PyErr_Clear();
    return outcome;
  }

  // The script's result, or its error. With the GIL held.
  std::string finish(Outcome outcome) const {
    if (outcome.timed_out) throw Error(ErrorCode::kTimeLimit, "time limit exceeded");
    if (!outcome.pair) throw Error(ErrorCode::kScriptError, outcome.stray);
    PyObject* ok = PyTuple_GetItem(outcome.pair.get(), 0);    // borrowed
    PyObject* text = PyTuple_GetItem(outcome.pair.get(), 1);  // borrowed
    if (ok == nullptr || text == nullptr) {
      PyErr_Clear();
      throw Error(ErrorCode::kInternal, "the script runner returned no (ok, text) pair");
    }
    std::string value = to_utf8(text);
    if (ok == Py_True) return value;
    throw Error(ErrorCode::kScriptError, shortened(std::move(value)));
  }

  // An error text without its final newline, its middle cut when it is very long (a script may
  // raise an exception carrying megabytes); the end, which names the exception, is kept.
  static std::string shortened(std::string text) {
    while (!text.empty() && text.back() == '\n') text.pop_back();
    if (text.size() <= kMaxErrorSize) return text;
    const size_t head = kMaxErrorSize / 16;
    const size_t tail = kMaxErrorSize - head;
    return text.substr(0, head) + "\n[... " + std::to_string(text.size() - head - tail) +
           " bytes cut ...]\n" + text.substr(text.size() - tail);
  }

  // Named by its type only: running its __str__ here would be Python code outside the time
  // limit. Clears it.
  static std::string escaped_exception() {
    PyObject* type = nullptr;
    PyObject* value = nullptr;
    PyObject* traceback = nullptr;
    PyErr_Fetch(&type, &value, &traceback);
    Ref owned_type{type}, owned_value{value}, owned_traceback{traceback};
    const char* name =
        type != nullptr ? reinterpret_cast<PyTypeObject*>(type)->tp_name : "unknown error";
    return std::string(name) + " (raised while reporting the script's error)";
  }

  std::chrono::milliseconds time_limit_;
  Runtime* runtime_ = nullptr;
  PyObject* globals_ = nullptr;  // the interpreter's state: a "__main__" namespace of its own
  PyThreadState* kept_state_ = nullptr;  // the constructing thread's, between scripts
  std::thread::id owner_;
};

}  // namespace
}  // namespace dango::script

DANGO_REGISTER_SCRIPT_LANGUAGE(python, ::dango::script::PythonBackend);
