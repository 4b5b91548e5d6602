// The operator's log lines for journal events. The journal never logs (it reports through
// options.report, STYLE.md "Logging"); tandemd passes this function as that reporter.
// Thread-safe: called on the writer thread at run time and on the election thread during
// recovery.
#pragma once

#include "journal/store.h"

namespace tandem::broker {

void log_journal_event(const journal::event& e);

}  // namespace tandem::broker
