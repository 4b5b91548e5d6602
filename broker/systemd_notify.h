// systemd's notification protocol (Type=notify in packaging/systemd/tandem@.service):
// READY=1 once the role is known (slave waiting, or master serving), STATUS= the role in
// words for `systemctl status`, STOPPING=1 on the way out. Without NOTIFY_SOCKET (not under
// systemd), or in a build without libsystemd, it does nothing. Safe from any thread: one
// datagram per call.
#pragma once

#include <string>

namespace tandem::broker {

void notify_systemd(const std::string& state);

}  // namespace tandem::broker
