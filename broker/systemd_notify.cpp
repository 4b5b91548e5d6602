#include "broker/systemd_notify.h"

#if TANDEM_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace tandem::broker {

void notify_systemd(const std::string& state) {
#if TANDEM_HAVE_SYSTEMD
  sd_notify(0, state.c_str());
#else
  (void)state;
#endif
}

}  // namespace tandem::broker
