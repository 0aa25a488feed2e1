// script::Client and script::Interpreter (see include/dango/services/script/client.hpp): each
// call is one RPC whose reply starts with an Outcome, turned into a script::Error here.

#include "dango/services/script/client.hpp"

#include "services/script/protocol.hpp"

namespace dango::script {

namespace detail {

struct ClientProcedures {
  explicit ClientProcedures(rpc::Engine& engine)
      : execute(engine.rpc<protocol::ExecuteRpc>(protocol::kExecute)),
        open(engine.rpc<protocol::OpenRpc>(protocol::kOpen)),
        create_interpreter(engine.rpc<protocol::CreateInterpreterRpc>(protocol::kCreateInterpreter)),
        destroy_interpreter(
            engine.rpc<protocol::DestroyInterpreterRpc>(protocol::kDestroyInterpreter)),
        list_interpreters(engine.rpc<protocol::ListInterpretersRpc>(protocol::kListInterpreters)) {}
  rpc::RemoteProcedure<protocol::ExecuteRpc> execute;
  rpc::RemoteProcedure<protocol::OpenRpc> open;
  rpc::RemoteProcedure<protocol::CreateInterpreterRpc> create_interpreter;
  rpc::RemoteProcedure<protocol::DestroyInterpreterRpc> destroy_interpreter;
  rpc::RemoteProcedure<protocol::ListInterpretersRpc> list_interpreters;
};

struct InterpreterHandle {
  std::shared_ptr<const ClientProcedures> procedures;
  rpc::Endpoint endpoint;
  std::string address;
  rpc::ProviderId provider_id;
  std::string name;
};

}  // namespace detail

namespace {

void check(const protocol::Outcome& outcome) {
  if (!outcome.ok()) throw Error(outcome.code, outcome.message);
}

}  // namespace

// ---- Interpreter --------------------------------------------------------------------------------

Execution Interpreter::execute(std::string_view code, const Arguments& args) const {
  const auto& h = *handle_;
  auto reply =
      h.procedures->execute.on(h.endpoint).with(h.provider_id)(h.name, std::string(code), args);
  check(reply.outcome);
  return std::move(reply.execution);
}

const std::string& Interpreter::address() const { return handle_->address; }
rpc::ProviderId Interpreter::provider_id() const { return handle_->provider_id; }
const std::string& Interpreter::name() const { return handle_->name; }

// ---- Client -------------------------------------------------------------------------------------

Client::Client(rpc::Engine& engine)
    : engine_(&engine), procedures_(std::make_shared<const detail::ClientProcedures>(engine)) {}
Client::~Client() = default;
Client::Client(const Client&) = default;
Client& Client::operator=(const Client&) = default;

Interpreter Client::open(std::string_view address, rpc::ProviderId provider_id,
                         std::string_view name) const {
  rpc::Endpoint endpoint = engine_->lookup(address);
  check(procedures_->open.on(endpoint).with(provider_id)(std::string(name)));
  return Interpreter(std::make_shared<const detail::InterpreterHandle>(
      detail::InterpreterHandle{.procedures = procedures_,
                                .endpoint = std::move(endpoint),
                                .address = std::string(address),
                                .provider_id = provider_id,
                                .name = std::string(name)}));
}

void Client::create_interpreter(std::string_view address, rpc::ProviderId provider_id,
                                const InterpreterConfig& config) const {
  check(procedures_->create_interpreter.on(engine_->lookup(address))
            .with(provider_id)(config.to_json().dump()));
}

void Client::destroy_interpreter(std::string_view address, rpc::ProviderId provider_id,
                                 std::string_view name) const {
  check(procedures_->destroy_interpreter.on(engine_->lookup(address))
            .with(provider_id)(std::string(name)));
}

std::vector<InterpreterInfo> Client::list_interpreters(std::string_view address,
                                                       rpc::ProviderId provider_id) const {
  auto reply = procedures_->list_interpreters.on(engine_->lookup(address)).with(provider_id)();
  check(reply.outcome);
  return reply.interpreters;
}

}  // namespace dango::script
