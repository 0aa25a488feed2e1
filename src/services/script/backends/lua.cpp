// The "lua" language: one Lua 5.4 state per interpreter. Its heap goes through an allocator that
// counts bytes against the memory limit; a count hook stops a script once its deadline passes;
// `print` and `io.write` go to the execution's output; `os.exit` is an error instead of ending
// the server. Chunks are loaded as text only (a crafted binary chunk could crash the VM).

#include <lua.hpp>

#include <chrono>
#include <string>

#include "dango/common/config.hpp"
#include "services/script/backend.hpp"

namespace dango::script {
namespace {

using Clock = std::chrono::steady_clock;

// Instructions between two looks at the clock: ~14 µs of a simple loop (dango-bench script's
// 100,000 additions, about 400,000 instructions, run in 0.55 ms).
constexpr int kHookInstructions = 10000;

class LuaBackend : public Backend {
 public:
  explicit LuaBackend(const InterpreterConfig& config) {
    // The state and its libraries are made without a limit (running out there would be a panic,
    // not an error); a limit they already exceed is a configuration error.
    state_ = lua_newstate(&LuaBackend::allocate, this);
    if (state_ == nullptr) throw Error(ErrorCode::kInternal, "lua: cannot create a state");
    luaL_openlibs(state_);
    install_functions();
    lua_gc(state_, LUA_GCCOLLECT);
    if (config.memory_limit != 0 && used_ > config.memory_limit) {
      const uint64_t needed = used_;
      lua_close(state_);
      config::fail("memory_limit", std::to_string(config.memory_limit) +
                                       " bytes is less than a Lua state with its libraries needs (" +
                                       std::to_string(needed) + ")");
    }
    limit_ = config.memory_limit;
  }
  ~LuaBackend() override { lua_close(state_); }

  std::string execute(std::string_view code, const Arguments& args, Clock::time_point deadline,
                      OutputSink& output) override {
    lua_State* L = state_;
    lua_settop(L, 0);
    deadline_ = deadline;
    timed_out_ = false;
    over_limit_ = false;
    output_ = &output;
    struct Reset {
      LuaBackend* self;
      ~Reset() {
        lua_sethook(self->state_, nullptr, 0, 0);
        lua_settop(self->state_, 0);
        self->output_ = nullptr;
      }
    } reset{this};

    lua_pushcfunction(L, &LuaBackend::traceback);
    int status = luaL_loadbufferx(L, code.data(), code.size(), "=script", "t");
    if (status != LUA_OK) throw failure(status);
    // run_chunk sets `args`, calls the chunk and turns its values into one string, inside the
    // protected call (allocations may fail; a __tostring metamethod is Lua code, and may fail or
    // loop).
    lua_pushcfunction(L, &LuaBackend::run_chunk);
    lua_insert(L, -2);
    lua_pushlightuserdata(L, const_cast<Arguments*>(&args));
    lua_sethook(L, &LuaBackend::hook, LUA_MASKCOUNT, kHookInstructions);
    status = lua_pcall(L, 2, 1, 1);
    if (status != LUA_OK) throw failure(status);
    size_t length = 0;
    const char* text = lua_tolstring(L, -1, &length);
    return std::string(text, length);
  }

 private:
  static void* allocate(void* context, void* block, size_t old_size, size_t new_size) {
    auto* self = static_cast<LuaBackend*>(context);
    if (block == nullptr) old_size = 0;  // then old_size is the kind of object, not a size
    if (new_size == 0) {
      std::free(block);
      self->used_ -= old_size;
      return nullptr;
    }
    if (self->limit_ != 0 && new_size > old_size &&
        self->used_ - old_size + new_size > self->limit_) {
      self->over_limit_ = true;
      return nullptr;  // Lua raises a memory error (LUA_ERRMEM)
    }
    void* moved = std::realloc(block, new_size);
    if (moved != nullptr) self->used_ = self->used_ - old_size + new_size;
    return moved;
  }

  // The backend of a state: kept in the state's extra space (lua_getextraspace).
  static LuaBackend& self(lua_State* L) {
    return **static_cast<LuaBackend**>(lua_getextraspace(L));
  }

  static void hook(lua_State* L, lua_Debug*) {
    LuaBackend& me = self(L);
    // Once past the deadline the hook runs at every instruction and raises each time: a script
    // that catches the error with pcall is stopped at its first instruction outside it.
    if (me.timed_out_ || Clock::now() > me.deadline_) {
      if (!me.timed_out_) lua_sethook(L, &LuaBackend::hook, LUA_MASKCOUNT, 1);
      me.timed_out_ = true;
      luaL_error(L, "time limit exceeded");
    }
  }

  // print(...): the values converted with tostring, tab-separated, and a newline.
  static int print(lua_State* L) {
    OutputSink* sink = self(L).output_;
    const int n = lua_gettop(L);
    for (int i = 1; i <= n; ++i) {
      size_t length = 0;
      const char* text = luaL_tolstring(L, i, &length);
      if (sink != nullptr) {
        if (i > 1) sink->append("\t");
        sink->append(std::string_view(text, length));
      }
      lua_pop(L, 1);
    }
    if (sink != nullptr) sink->append("\n");
    return 0;
  }

  // io.write(...): strings and numbers, as they are.
  static int write(lua_State* L) {
    OutputSink* sink = self(L).output_;
    const int n = lua_gettop(L);
    for (int i = 1; i <= n; ++i) {
      size_t length = 0;
      const char* text = luaL_checklstring(L, i, &length);
      if (sink != nullptr) sink->append(std::string_view(text, length));
    }
    return 0;
  }

  static int exit_refused(lua_State* L) {
    return luaL_error(L, "os.exit is not available in a Dango interpreter (it would end the server)");
  }

  // The message handler of a failed script: its message with a traceback.
  static int traceback(lua_State* L) {
    const char* message = lua_tostring(L, 1);
    if (message == nullptr) {
      message = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, message, 1);
    return 1;
  }

  // Sets the global `args` from the Arguments (argument 2), calls the chunk (argument 1) and
  // returns its values as one string, tab-separated.
  static int run_chunk(lua_State* L) {
    const auto& args = *static_cast<const Arguments*>(lua_touserdata(L, 2));
    lua_pop(L, 1);
    lua_createtable(L, 0, static_cast<int>(args.size()));
    for (const auto& [key, value] : args) {
      lua_pushlstring(L, value.data(), value.size());
      lua_setfield(L, -2, key.c_str());
    }
    lua_setglobal(L, "args");
    lua_call(L, 0, LUA_MULTRET);
    const int n = lua_gettop(L);
    luaL_Buffer buffer;
    luaL_buffinit(L, &buffer);
    for (int i = 1; i <= n; ++i) {
      if (i > 1) luaL_addchar(&buffer, '\t');
      luaL_tolstring(L, i, nullptr);
      luaL_addvalue(&buffer);
    }
    luaL_pushresult(&buffer);
    return 1;
  }

  void install_functions() {
    lua_State* L = state_;
    *static_cast<LuaBackend**>(lua_getextraspace(L)) = this;
    lua_pushcfunction(L, &LuaBackend::print);
    lua_setglobal(L, "print");
    lua_getglobal(L, "io");
    lua_pushcfunction(L, &LuaBackend::write);
    lua_setfield(L, -2, "write");
    lua_pop(L, 1);
    lua_getglobal(L, "os");
    lua_pushcfunction(L, &LuaBackend::exit_refused);
    lua_setfield(L, -2, "exit");
    lua_pop(L, 1);
  }

  // The error of a failed load or call (the message is on top of the stack).
  Error failure(int status) {
    size_t length = 0;
    const char* text = lua_tolstring(state_, -1, &length);
    std::string message = text != nullptr ? std::string(text, length) : "(no message)";
    if (timed_out_) return Error(ErrorCode::kTimeLimit, "time limit exceeded");
    if (status == LUA_ERRMEM || over_limit_) {
      return Error(ErrorCode::kMemoryLimit,
                   "memory limit of " + std::to_string(limit_) + " bytes exceeded");
    }
    return Error(ErrorCode::kScriptError, message);
  }

  lua_State* state_ = nullptr;
  uint64_t limit_ = 0;  // 0 while the state is being made
  uint64_t used_ = 0;
  bool over_limit_ = false;
  bool timed_out_ = false;
  Clock::time_point deadline_{};
  OutputSink* output_ = nullptr;
};

}  // namespace
}  // namespace dango::script

DANGO_REGISTER_SCRIPT_LANGUAGE(lua, ::dango::script::LuaBackend);
