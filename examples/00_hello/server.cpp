// A server with one RPC, sum(int, int) -> int. Prints its address, serves until a client
// calls "shutdown" (or it is interrupted).
#include <dango/dango.hpp>
#include <iostream>

int main(int argc, char** argv) {
  dango::Engine engine{argc > 1 ? argv[1] : "tcp://127.0.0.1:0"};
  engine.define("sum", [](int a, int b) { return a + b; });
  engine.define("shutdown", [&engine] { engine.finalize(); });
  std::cout << engine.address() << std::endl;
  engine.wait_for_finalize();
}
