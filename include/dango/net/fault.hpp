#pragma once
// Test-only fault injection: the "fault+<scheme>" transports ("fault+tcp://127.0.0.1:0") wrap
// the ordinary transport of that scheme and, while the process-wide switch below is on, drop
// every message they would send or deliver (a send still reports success, as a message lost on
// the wire would). One-sided get/put are not affected. The wrapped transport's address is the
// plain one ("tcp://..."), so peers need no fault transport to talk to a faulty process.

namespace dango::net::fault {

// Turns dropping on or off for every fault transport of this process. Async-signal-safe (a
// lock-free atomic store), so a test program may flip it from a signal handler.
void set_dropping(bool on) noexcept;
// Whether messages are being dropped.
bool dropping() noexcept;

}  // namespace dango::net::fault
