#pragma once
// guarded<Reply, Error>(body): runs the body of a component's RPC handler so that nothing escapes
// as an exception. The component's typed Error (with code()) becomes the reply's outcome, so the
// caller gets the same typed error back instead of a RemoteError with only a message; a
// ConfigError becomes ErrorCode::kInvalidArgument, anything else kInternal.
//
// Reply is the component's Outcome ({code, message}) or a reply struct whose first member
// `outcome` is one. Used by the blob and script providers.

#include <exception>
#include <type_traits>
#include <utility>

#include "dango/common/error.hpp"

namespace dango::services {

namespace detail {
template <class Reply>
struct OutcomeOf {
  using type = decltype(std::declval<Reply>().outcome);
};
}  // namespace detail

template <class Reply, class Error, class Body>
Reply guarded(Body&& body) {
  using ErrorCode = decltype(std::declval<const Error&>().code());
  constexpr bool kIsOutcome = requires(Reply r) { r.code; r.message; };
  using Outcome = typename std::conditional_t<kIsOutcome, std::type_identity<Reply>,
                                              detail::OutcomeOf<Reply>>::type;
  Outcome failure{};
  try {
    return body();
  } catch (const Error& e) {
    failure = {.code = e.code(), .message = e.what()};
  } catch (const ConfigError& e) {
    failure = {.code = ErrorCode::kInvalidArgument, .message = e.what()};
  } catch (const std::exception& e) {
    failure = {.code = ErrorCode::kInternal, .message = e.what()};
  }
  if constexpr (kIsOutcome) {
    return failure;
  } else {
    Reply reply{};
    reply.outcome = std::move(failure);
    return reply;
  }
}

}  // namespace dango::services
