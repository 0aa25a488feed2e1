// Calls sum(1, 2) on the server whose address is given, then asks it to shut down.
#include <dango/dango.hpp>
#include <iostream>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: " << argv[0] << " SERVER_ADDRESS\n";
    return 2;
  }
  dango::Engine engine{"tcp"};
  dango::Endpoint server = engine.lookup(argv[1]);
  auto sum = engine.rpc<int(int, int)>("sum");
  std::cout << "sum(1, 2) = " << sum.on(server)(1, 2) << std::endl;
  engine.rpc<void()>("shutdown").on(server)();
}
