// Defines an RPC and calls it through the in-process path and over TCP; exits 0 when both work.
#include <dango/dango.hpp>
#include <iostream>

int main() {
  dango::Engine server{"tcp://127.0.0.1:0"};
  server.define("sum", [](int a, int b) { return a + b; });
  dango::Engine client{"tcp"};
  auto sum = client.rpc<int(int, int)>("sum");
  int remote = sum.on(client.lookup(server.address()))(40, 2);
  int local = server.rpc<int(int, int)>("sum").on(server.self())(1, 2);
  std::cout << "remote " << remote << " local " << local << std::endl;
  return remote == 42 && local == 3 ? 0 : 1;
}
