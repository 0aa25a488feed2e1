#include <dango/dango.hpp>
#include <iostream>

int main(int argc, char** argv) {
  if (argc == 1) {  // server: prints its address, serves sum(int, int) -> int
    dango::Engine engine{"tcp://127.0.0.1:0"};
    engine.define("sum", [](int a, int b) { return a + b; });
    std::cout << engine.address() << std::endl;
    engine.wait_for_finalize();
  } else {          // client: ./hello tcp://127.0.0.1:PORT
    dango::Engine engine{"tcp"};
    auto sum = engine.rpc<int(int, int)>("sum");
    std::cout << sum.on(engine.lookup(argv[1]))(1, 2) << std::endl;  // prints 3
  }
}
