// The on-disk format of a Tandem store: the single source for reader and writer.
// docs/journal_format.md adds a worked example (hex dump of a tiny journal).
//
// ---------------------------------------------------------------------------------------
// 1. Store directory
// ---------------------------------------------------------------------------------------
//   DIR/identity                       who this store is (section 2); written once by create
//   DIR/journal/<seq:016x>.seg         log segments (sections 3-5), seq = 1, 2, ...
//   DIR/journal/checkpoint-<lsn:016x>.ckpt   index checkpoints (section 6), newest two kept
//   DIR/journal/*.tmp                  leftovers of an interrupted atomic write; removed by open
//   DIR/lock, DIR/epoch, DIR/holder.json   belong to lockmgr (lockmgr/format.h); never touched
//   DIR/masters.jsonl                  the history of masters, lockmgr's too (lockmgr/history.h)
// Names are fixed-width lowercase hex so `ls` sorts them in log order. Section 9 says what
// the format assumes of the disk underneath.
//
// ---------------------------------------------------------------------------------------
// 2. Identity file (text, written atomically: identity.tmp, fsync, rename, fsync DIR)
// ---------------------------------------------------------------------------------------
//   format=tandem-store\n
//   version=1\n
//   store_id=<32 lowercase hex digits>\n      128 random bits, the store's name
//   created_ms=<decimal ms since Unix epoch>\n
// Exactly these four keys in this order. Why text: an operator can `cat` it to see which
// store a mount holds; it is read once per start, so parsing cost does not matter. An
// unknown format or version is refused (errc::unsupported_version). The store id is also
// stamped in every segment and checkpoint header so a file copied from another store is
// refused (errc::wrong_store) instead of silently merged.
//
// ---------------------------------------------------------------------------------------
// 3. Conventions for the binary files
// ---------------------------------------------------------------------------------------
// All integers little-endian, encoded and decoded field by field (never by copying a
// struct, so padding and host byte order cannot leak to disk). Checksums are XXH3-64
// (xxhash.h, seed 0): fast enough (>10 GB/s) that checksumming every byte of every record
// costs less than the write itself, and 64 bits make an undetected random corruption
// negligible.
// Encoded values used by payloads (section 5):
//   u8 / u16 / u32 / u64 / i64   1 / 2 / 4 / 8 / 8 bytes, little-endian (i64 two's complement)
//   str                          u32 length n, then n bytes (no terminator; may hold any byte)
//   bytes                        same as str (message bodies may hold NULs)
//   list<T>                      u32 count n, then n encodings of T
//
// ---------------------------------------------------------------------------------------
// 4. Segment file "<seq:016x>.seg"
// ---------------------------------------------------------------------------------------
// A segment is preallocated with fallocate to `segment_bytes` (default 32 MiB) so appends
// never extend the file (fdatasync then needs no metadata flush, and ENOSPC shows up when a
// segment is created, not in the middle of a group commit). Unwritten space reads as zeros.
//
// Segment header, 64 bytes at offset 0:
//   off size field        meaning
//     0    8 magic        "TNDMSEG1" (54 4e 44 4d 53 45 47 31)
//     8    4 version      segment_format_version (3) is written. Version 1 (before the
//                         group_start flag, section 4 record header) is still read, by the
//                         version 1 rules of section 7; version 2 (record 6 without its
//                         owner, section 5) reads as 3 does; any other value is refused:
//                         errc::unsupported_version, and tandem-journal names the file
//    12    4 reserved     zero
//    16   16 store_id     the 128-bit store id of DIR/identity
//    32    8 seq          this segment's sequence number; must match the file name
//    40    8 epoch        master epoch of the broker that created the segment
//    48    8 capacity     bytes preallocated when created (informational; readers use the
//                         real file size)
//    56    8 checksum     XXH3-64 of bytes [0, 56)
// A segment whose header is all zeros or shorter than 64 bytes was being created when the
// writer died: it holds no record (the header is synced before any record is written) and
// recovery treats it as an empty torn tail if it is the last segment.
//
// Records follow from offset 64, each starting 8-byte aligned, back to back:
//   record := header(32) payload(length) zero-pad to the next multiple of 8
// Why 8-byte alignment: a header then never straddles a 512-byte sector, so a torn write
// cannot tear a header in a way that still looks valid, and resynchronising after damage
// (salvage, mid-log detection) only needs to test every 8th offset.
//
// Record header, 32 bytes:
//   off size field        meaning
//     0    8 checksum     XXH3-64 of header bytes [8, 32) followed by the payload bytes
//     8    4 length       payload bytes (padding excluded)
//    12    1 type         record_type (section 5); 0 and unknown values are corruption
//    13    1 flags        bit 0 group_start (below); other bits zero. An unknown bit, or
//                         any bit in a version 1 segment, is corruption
//    14    2 reserved     zero
//    16    8 lsn          log sequence number: +1 per record across the whole store, never
//                         reused (a new master continues from the last recovered lsn)
//    24    8 epoch        master epoch of the writer (fencing, section 7)
// A writer never writes a record that does not fit: it rolls to a new segment, leaving
// zeros. It fdatasyncs a segment before it writes the first record of the next one.
//
// group_start (flags bit 0) is set on a record when every byte of the segment before it
// was durable (an fdatasync of the segment had returned) before the record was written:
// on the first record of each write that follows an fdatasync. With sync_policy always
// that is the first record of every group commit, because the writer writes a group with
// one gathered write, fdatasyncs, and only then acknowledges it and writes the next group;
// a segment's first record (after its header was synced) has it too. With periodic and
// never it is the first record after each periodic, roll, checkpoint or close fdatasync.
// Recovery uses it to tell a torn tail from damaged synced data (section 7). Worked
// example, sync always, groups {a b c} and {d e} then {f g h} cut by a power failure:
//   a* b c d* e f* g h        (* = group_start; f g h written, never synced)
// Page-cache writeback may put g and h on the disk but not f, so recovery can meet
// damage at f followed by valid records g and h. No group_start follows the damage, so
// all of it was written after the last completed fdatasync: a torn tail (nothing in it was
// acknowledged). Damage at b followed by the valid d* is different: d was written after
// an fdatasync that covered b, so b was damaged after it was synced: mid-log corruption.
//
// End of data: an all-zero header at offset P ends the segment's data when the
// end_of_data_check_bytes (64 KiB) from P on are zero too (or the file ends first).
// Recovery reads nothing further: opening a store then does not read the unused,
// preallocated rest of a 32 MiB segment, which cost ~30 ms per takeover even with an empty
// journal (the first read of never-written blocks has the kernel zero-fill every page). A
// zero header followed by a non-zero byte within the 64 KiB is damage (section 7).
// Why 64 KiB is enough:
// - A durable record whose header was zeroed by a fault still shows non-zero bytes within
//   a few bytes: every payload starts with a non-zero field (a msg_seq, an epoch, a
//   string length, a count) or is short enough that the next record's header follows.
// - Bytes past the window can only be writes after the last completed fdatasync that
//   reached the disk while the 64 KiB after P did not (page-cache writeback keeps no
//   order). They were never acknowledged under sync_policy always (periodic, never: they
//   are in the loss window), so ignoring them loses nothing promised. They stay ignored:
//   every later reader stops at the same P, and no writer appends to that segment again
//   (a recovering master starts a new one). The other possible writer there, a deposed
//   master, writes records that fencing ignores anyway.
// The rule applies to version 1 segments too (their writer left zeros after the data).
//
// ---------------------------------------------------------------------------------------
// 5. Record payloads (type value: name {fields in order})
// ---------------------------------------------------------------------------------------
//  1 message_add {
//      u64        msg_seq        store-wide unique message number (never reused)
//      list<str>  targets        queue keys the message is enqueued on: a queue name, or one
//                                per durable subscription (subscription_target()); >= 1
//      str        message_id
//      str        producer_id    "" when absent
//      u64        producer_seq   0 when absent; (producer_id, producer_seq) detects resends
//      i64        expires_ms     ms since Unix epoch, 0 = never
//      u8         priority       0..9
//      u8         flags          bit 0 = persistent; bit 1 = compaction copy (below);
//                                bit 2 = delivery state (the two fields below follow);
//                                other bits zero
//      i64        deliver_at_ms  only with flags bit 2: not offered to a consumer before
//                                this time (ms since Unix epoch)
//      u32        redeliveries   only with flags bit 2: deliveries the message had before
//                                it was put back (its next delivery is redelivered:true
//                                and counts on from here)
//      list<{str name, str value}> headers   in arrival order, repeats allowed
//      bytes      body
//    }  The fixed and index-relevant fields come first and headers/body last so recovery
//       can index a message without touching (or copying) its headers and body.
//       A compaction copy (bit 1) re-writes a live message at the head, with `targets`
//       cut down to the targets still live in the compacted segment; everything else is
//       the original's. Replay treats it as an add (the newest location wins) that is not
//       a send: its producer_seq does not enter the dedup window.
//       Delivery state (bit 2) is written by a redelivery with a delay (a NACK under a
//       destination policy's redelivery settings, broker/engine/redelivery.cpp): the
//       message comes back as a batch { message_remove of the delivered msg_seq,
//       message_add of a copy with a new msg_seq and bit 2 }, so after a crash it is on
//       the queue exactly once, its delay and count survive a restart or failover, and a
//       compaction copy keeps them (it re-encodes every field). Neither field is in the
//       index (section 6) of a destination's message: a broker reads them with the
//       message, when it comes to dispatch it (a scheduler entry's deliver_at_ms is, below). A record without bit 2 reads as deliver_at_ms 0, redeliveries 0, so
//       segments written before bit 2 existed read unchanged (no version change).
//       Scheduled messages (AMQ_SCHEDULED_*, broker/engine/scheduled.cpp) are message_adds
//       too, on the one target scheduler_target ("scheduler\n", below: no destination name
//       starts like it), so checkpoints, compaction, GC, the PostgreSQL store and
//       `tandem-journal dump` keep and show them with no new record type. Such an entry:
//         flags bit 2 set; deliver_at_ms = when it fires next; redeliveries = 0;
//         message_id = the job id (kept by every later state of the entry);
//         headers = the SEND's (AMQ_SCHEDULED_DELAY / _PERIOD / _REPEAT / _CRON as sent),
//           plus "tandem-schedule-destination" (the destination as sent, composite or
//           not: it is resolved when it fires) and "tandem-schedule-left" (deliveries
//           of its run after the next one, decimal, -1 = forever).
//       A firing is ONE batch (record 3): { message_remove of the entry, the fired
//       message's message_add on its destination's targets (only when it is persistent
//       and has a durable target), message_add of the entry's next state with a new
//       msg_seq (absent when the schedule is done; a cron run adds a second entry, its
//       child, without the cron header) }. After a crash the log holds the firing whole
//       or not at all, so the next master fires it exactly once more or not at all.
//       A cancel is a message_remove of the entry. The index keeps, for this target
//       only, each entry's deliver_at_ms and message_id (live_index::schedules(), decoded
//       from the fixed prefix at replay like the rest of an index entry; checkpoints carry
//       them, section 6), so a broker taking over builds its timer heap and answers a
//       cancel by job id without reading an entry; it reads one when it fires or is
//       listed. Why the job id is in the index too and not read when needed: a cancel by
//       job id right after a takeover would otherwise read every entry (~60 us each, 6 s
//       at 100,000 on the io thread) to find the ones of that job; it costs a 24-byte
//       entry plus the job id's bytes per pending schedule (journal/schedule_list.h).
//  2 message_remove { str target, u64 msg_seq }   acked, expired or moved off `target`
//  3 batch { list<{u8 type, u32 length, payload(length)}> items }
//       A transaction's SENDs and ACKs as one record: after a crash all or none of it is
//       there. Items are message_add or message_remove only (no nesting).
//  4 destination_create { str name }   the latest create of a destination that still
//       exists is its "definition"; compaction re-writes it at the head (same bytes) when
//       the segment holding it is compacted, so it outlives that segment
//  5 destination_delete { str name }   also drops every live message on target `name`
//  6 durable_subscription_create { str client_id, str subscription_name, str topic,
//                                  str selector, str owner_login }   a definition, like 4
//       owner_login is the login of the session that made it ("" = unowned: made by an
//       anonymous session). Only its owner may subscribe to it or remove it after a
//       restart or failover (issue 17; broker/engine/subscribe.cpp). It is the format's
//       one OPTIONAL TRAILING field: version 1 and 2 segments hold record 6 without it
//       (the payload ends after selector), and a reader takes owner_login as present iff
//       payload bytes remain after selector, so such a record reads as unowned (the
//       broker then lets the first login that subscribes claim it, logged, and journals
//       the claim as a new record 6). Compaction copies a definition byte for byte, so an
//       old record stays ownerless in a version 3 segment and reads the same.
//       Why the segment version went to 3 with it: a broker from before owners reads a
//       record 6 with trailing bytes as a payload that does not parse under a valid
//       checksum, i.e. corruption (refused as mid-log corruption, or dropped with
//       everything after it as a torn tail in the last segment). Version 3 makes it refuse
//       the segment by version instead, naming the file (errc::unsupported_version) before
//       it reads a record: a store written by this code is refused clearly by older
//       brokers, never misread. Upgrade every broker of a master/slave group before the
//       first new one becomes master. Example (client_id "app", name "feed", topic
//       "/topic/t", no selector, owner "shop"), 39 bytes:
//         03000000 617070  04000000 66656564  08000000 2f746f7069632f74  00000000
//         04000000 73686f70
//  7 durable_subscription_remove { str client_id, str subscription_name, str topic,
//                                  str selector }   (no owner: removal is by key) also
//       drops the messages on subscription_target(client_id, subscription_name)
//  8 epoch_start { u64 epoch, u64 cut_segment, u64 cut_offset, u64 last_lsn,
//                  str broker_name }
//       First record a new master writes, in a fresh segment. (cut_segment, cut_offset) is
//       the end of the last valid record it recovered; last_lsn that record's lsn.
//  9 checkpoint { u64 lsn, str file_name }   a checkpoint covering records <= lsn was
//       written (informational: lets `tandem-journal dump` show checkpoints in log order)
// 10 index_state { u64 next_msg_seq,
//                  list<{str producer_id, u8 extend, list<u64> seqs}> windows }
//       The index state no live record implies: the msg_seq counter and the producers'
//       dedup windows (seqs oldest first). Written by the store before GC deletes a
//       segment (section 8), reflecting every record before it. Replay: next_msg_seq =
//       max(current, next_msg_seq); extend = 0 replaces the producer's window with seqs,
//       extend = 1 appends them (a window too long for one record continues in the
//       next); extend > 1 is corruption. Producers not listed keep their windows. Several
//       index_state records written back to back form one set. Windows are listed least
//       recently recorded to first (the producers of appends queued before the set moved
//       to the end in their order), and replay makes each listed producer the most recent,
//       so the recency after the set is the writer's (options::max_producers).
// A payload must be consumed exactly; trailing or missing bytes are corruption.
//
// ---------------------------------------------------------------------------------------
// 6. Checkpoint file "checkpoint-<lsn:016x>.ckpt" (written atomically: .tmp, fsync,
//    rename, fsync dir; the newest two are kept so a damaged newest falls back to the one
//    before, and without either recovery replays every segment)
// ---------------------------------------------------------------------------------------
// Header, 96 bytes:
//   off size field          meaning
//     0    8 magic          "TNDMCKP1"
//     8    4 version        checkpoint_format_version (4) is written; 2 and 3 are still
//                           read (below)
//    12    4 reserved       zero
//    16   16 store_id
//    32    8 lsn            every record with lsn <= this is reflected in the body
//    40    8 replay_segment recovery replays from (replay_segment, replay_offset): the end
//    48    8 replay_offset  of the record with `lsn`
//    56    8 next_msg_seq
//    64    8 max_epoch      highest epoch_start seen so far (fencing state, section 7)
//    72    8 cut_segment    that epoch_start's cut
//    80    8 cut_offset
//    88    8 body_length    bytes between the header and the trailer
// Body (encodings of section 3):
//   list<{str name, location}>                  destinations
//   list<{str client_id, str subscription_name, str topic, str selector,
//         str owner_login, location}>           durable subscriptions (version 2 files:
//                                               no owner_login; they read as unowned)
//     location := u64 segment, u32 offset, u32 size   where the definition's record is
//                 (section 5, records 4 and 6); segment 0 = its create was not durable yet
//                 when the checkpoint was taken (replaying the tail places it)
//   list<{str producer_id, list<u64> seqs}>     dedup windows, oldest seq first; producers
//                                               least recently recorded to first, so that
//                                               loading in order rebuilds the recency that
//                                               options::max_producers evicts by (older
//                                               files: any order, only the eviction order
//                                               differs)
//   list<{str target, u64 n, n x message_entry}>  live messages per target, msg_seq order
//     message_entry := u64 msg_seq, u64 segment, u32 offset, u32 size, i64 expires_ms,
//                      u8 priority            (33 bytes)
//   list<{u64 msg_seq, i64 deliver_at_ms, str job_id}>   schedules (version 4 on): one per
//                                               entry of target scheduler_target, msg_seq
//                                               order (section 5, "Scheduled messages");
//                                               exactly that target's entries, or the
//                                               file is corrupt
// Trailer: u64 XXH3-64 of every byte before it (header and body). A checkpoint whose
// length, magic, version, store id or checksum is wrong is skipped and reported. Recovery
// loads the newest sound one; the one before it, kept as the fallback, is checked only by
// those fields and the checksum, read in pieces (its body is parsed if it is ever loaded).
// Versions: 2 has neither owner_login nor the schedules list; 3 adds owner_login (durable
// subscriptions keep their owner, issue 17); 4 adds the schedules list (issue 16). A
// version 2 or 3 file is read when it holds no entry on scheduler_target; one that does is
// refused (errc::unsupported_version, "version 2/3 checkpoint holds scheduled entries
// without their due times"), as is version 1 (no definition locations) and any other:
// recovery then falls back to the other checkpoint or a full replay, which give the same
// index. So a store written before version 4 opens unchanged, at worst with one full
// replay; its next checkpoint is version 4. A broker from before version 3 skips a newer
// checkpoint the same way, and its full replay then meets a version 3 segment, refused by
// name (section 4).
//
// ---------------------------------------------------------------------------------------
// 7. Recovery rules (what a reader must do with the bytes)
// ---------------------------------------------------------------------------------------
// - Segments are read in seq order; within one, records in offset order until the end of
//   data (section 4), the end of the file, or damage.
// - Damage = a header or payload whose checksum, type, flags, length or lsn (must be
//   previous + 1) is wrong, a record running past the end of the file, or a zero header
//   followed by a non-zero byte within end_of_data_check_bytes.
// - After damage at offset P the rest of the segment is probed at every 8th offset for
//   records that verify with an lsn above the last valid one ("valid records after P").
// - Torn tail: damage in the LAST segment with no valid group_start record after it
//   (version 1 segments, which have no flag: no valid record at all after it). Everything
//   from P on was then written after the last fdatasync that completed, and may have
//   reached the disk in any order, so valid records may follow the damage; with sync
//   policy always none of it was acknowledged. Recovery zeroes P to the segment's last
//   non-zero byte (valid records there included), fsyncs, reports segment, offset and
//   bytes dropped, and goes on.
// - Mid-log corruption: damage with a valid group_start record after it (version 1: any
//   valid record), or damage in a segment that is not the last (it was synced before the
//   next segment got a record): data was damaged after an fdatasync covered it. Refused,
//   unless salvage mode skips the range to the next valid record and reports it.
// - What that means per sync policy (store.h): with always, recovery after a power failure
//   loses nothing acknowledged and never refuses. With periodic and never, records
//   acknowledged after the last completed fdatasync may lie in a torn tail and are dropped
//   with it: that is their documented loss window, and recovery still never refuses, so a
//   power failure cannot lock an operator out under any policy. Refusal means synced data
//   changed (a failing disk, a disk breaking the assumptions of section 9, or a bug): run
//   `tandem-journal verify DIR`, then decide on salvage, which loses the damaged range.
// - Limits of detection: damage to synced data inside the LAST group of the last segment,
//   with no later group written, looks exactly like a torn tail and is truncated as one
//   (reported as torn_tail_truncated with its offset and size). A zeroed durable header
//   followed by end_of_data_check_bytes of zeros would read as the end of data.
// - Fencing: after an epoch_start with epoch E and cut C, a record with epoch < E located
//   after C (segment order) was written by a deposed master that kept writing (a paused or
//   partitioned process): it is ignored and reported as fenced, and so is damage there.
//   Records before C are the history E recovered and stay valid.
// - A new master's history is durable before it builds on it. The bytes of the last
//   segment after its last group_start record (the start of the segment for version 1)
//   may never have been synced: the previous master may have died on a failed write or
//   fdatasync while the page cache still serves them (Linux may even have marked them
//   clean). Recovery writes them again and fdatasyncs the segment before it writes its
//   epoch_start (event tail_made_durable), so nothing it replays can vanish later.
// - Lost unsynced history (stores written before that rule, issue 12 bug 6): an
//   epoch_start whose cut lies beyond the end of the valid data before it, and whose
//   last_lsn lies beyond the last lsn read, while its own lsn is last_lsn + 1. Its master
//   replayed records that were never durable and a power loss took them. They were never
//   acknowledged under sync_policy always (an acknowledged record was fdatasync'd), so
//   recovery reports them (unsynced_records_lost: segment, offsets, lsns) and goes on
//   after the gap instead of refusing. A checkpoint written since that indexes anything
//   in the missing range (messages, definitions; its dedup windows may hold their seqs)
//   is not loaded: the replay from before the gap drops exactly those records.
// - Idempotence: a message_add for a msg_seq already in the index (compaction copies a live
//   message to the head) replaces its location; removes of absent messages are no-ops; a
//   create of an existing destination or subscription moves its definition to the new
//   record (a subscription also takes the new topic and selector).
//
// ---------------------------------------------------------------------------------------
// 8. What GC leaves on disk: always a suffix of the log
// ---------------------------------------------------------------------------------------
// GC deletes segments only from the front: the first segment present, never one while an
// older one remains. So the segments on disk are always the log ever written minus a
// prefix, and a full replay of them (every checkpoint lost) rebuilds exactly the index a
// checkpoint holds. Why nothing weaker works: a record can cancel one written before it
// (a message_remove its message_add, a destination_delete the create and every add on
// the destination, a durable_subscription_remove likewise), never one written after it.
// Deleting any prefix removes cancelling records only together with everything they
// cancel. Deleting a segment in the middle would drop a remove while the add it cancels
// survives in an older segment: the message would come back on replay.
// The first segment may go when nothing in it is still needed:
// - no live message points into it and it holds no definition (section 5, records 4 and
//   6) of a destination or subscription that still exists: compaction copies those to
//   the head first (message adds as copies, definitions as the same create record);
// - an index_state set (record 10) written after it is durable, since its adds may be
//   the only trace of a dedup window or of the highest msg_seq;
// - both kept checkpoints replay from a later segment.
// Everything written before a deletion is synced first (copies, index_state), and each
// unlink is made durable (directory fsync) before the next, so a crash at any point
// leaves a shorter prefix deleted: still a suffix, replaying to the same index.
//
// ---------------------------------------------------------------------------------------
// 9. What the format assumes of the disk
// ---------------------------------------------------------------------------------------
// - fdatasync returns only once the data is durable: the drive's volatile write cache is
//   flushed (or battery- / capacitor-backed). A drive or virtual disk that acknowledges
//   flushes it has not done breaks every promise of store.h, and nothing here can detect
//   it before the data is needed.
// - Powersafe overwrite (SQLite's term; its SQLITE_POWERSAFE_OVERWRITE is on by default):
//   a power failure during a write may damage the bytes being written, never bytes of
//   the file outside them. Why the journal depends on it: group commits are not sector
//   aligned. A group starts right after the previous one, inside the 512-byte or 4 KiB
//   sector (and the page) that holds the tail of already synced, acknowledged records;
//   the kernel writes that whole page back again with the new bytes. A drive that can
//   leave a sector half written and unreadable (read back as zeros or garbage) would
//   destroy those acknowledged records. The fault tests measured it: with such a disk,
//   a few of 200 simulated power failures undid acknowledged operations (15 of 5706 in
//   one run).
//   Who provides it: hard disks finish the sector they are writing when power fails (the
//   reasoning SQLite gives for its default); SSDs remap every write to a fresh flash page
//   (copy-on-write in the flash translation layer), so the old contents survive until
//   the new write is complete, and drives with power-loss protection (capacitors:
//   datacenter SSDs, most NVMe drives for servers, battery-backed RAID controllers)
//   complete writes in flight; NVMe reports its guarantee as AWUPF (atomic write unit
//   power fail, at least one logical block). Who may not: consumer flash without
//   power-loss protection (SD cards, USB sticks, some cheap SATA SSDs), where studies have
//   seen torn and shorn writes at power failure. Put a store only on storage that keeps
//   both promises; on NFS they must hold for the server's disks, and the server must
//   honour COMMIT (no `async` export).
// - Not done: aligning each group commit to a sector. It would need a padding record
//   type, cost up to a sector of padding per group (with 1 KiB messages from one
//   producer, 4 KiB sectors would write up to 4 times the bytes), and still depend on the
//   drive writing a whole physical sector atomically, which is the same promise.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tandem::journal::format {

inline constexpr std::string_view identity_file_name = "identity";
inline constexpr std::string_view identity_format_name = "tandem-store";
inline constexpr std::uint32_t identity_version = 1;
inline constexpr std::string_view journal_dir_name = "journal";
inline constexpr std::string_view segment_suffix = ".seg";
inline constexpr std::string_view checkpoint_prefix = "checkpoint-";
inline constexpr std::string_view checkpoint_suffix = ".ckpt";
inline constexpr std::string_view temp_suffix = ".tmp";
// The target key of scheduled messages (section 5, "Scheduled messages"). Like
// subscription_target()'s "durable\n" prefix it starts with nothing a STOMP destination can.
inline constexpr std::string_view scheduler_target = "scheduler\n";

inline constexpr std::array<char, 8> segment_magic = {'T', 'N', 'D', 'M', 'S', 'E', 'G', '1'};
inline constexpr std::uint32_t segment_format_version = 3;         // written
inline constexpr std::uint32_t oldest_segment_format_version = 1;  // still read (section 7)
inline constexpr std::size_t segment_header_bytes = 64;
inline constexpr std::size_t segment_header_checksum_offset = 56;

inline constexpr std::size_t record_header_bytes = 32;
inline constexpr std::size_t record_alignment = 8;
inline constexpr std::uint8_t record_flag_group_start = 0x01;  // record header byte 13, bit 0
inline constexpr std::uint8_t known_record_flags = record_flag_group_start;
// Zeros after an all-zero record header that mean "end of data" (section 4).
inline constexpr std::uint64_t end_of_data_check_bytes = 64 << 10;

inline constexpr std::array<char, 8> checkpoint_magic = {'T', 'N', 'D', 'M', 'C', 'K', 'P', '1'};
inline constexpr std::uint32_t checkpoint_format_version = 4;         // written
inline constexpr std::uint32_t oldest_checkpoint_format_version = 2;  // still read (section 6)
inline constexpr std::uint32_t checkpoint_owner_version = 3;          // first with owner_login
inline constexpr std::uint32_t checkpoint_schedules_version = 4;      // first with the schedules list
inline constexpr std::size_t checkpoint_header_bytes = 96;
inline constexpr std::size_t checkpoint_message_entry_bytes = 33;

inline constexpr std::uint64_t default_segment_bytes = 32ull << 20;
// Offsets are kept as u32 in memory (location), so a segment is at most 4 GiB - 1.
inline constexpr std::uint64_t max_segment_bytes = (1ull << 32) - 1;
inline constexpr std::uint64_t min_segment_bytes = 4096;

enum class record_type : std::uint8_t {
  message_add = 1,
  message_remove = 2,
  batch = 3,
  destination_create = 4,
  destination_delete = 5,
  durable_subscription_create = 6,
  durable_subscription_remove = 7,
  epoch_start = 8,
  checkpoint = 9,
  index_state = 10,
};
inline constexpr std::uint8_t max_record_type = 10;

constexpr std::uint64_t align_up(std::uint64_t n) noexcept {
  return (n + record_alignment - 1) & ~std::uint64_t{record_alignment - 1};
}
// Bytes a record with `payload_bytes` of payload occupies in a segment.
constexpr std::uint64_t record_bytes(std::uint64_t payload_bytes) noexcept {
  return record_header_bytes + align_up(payload_bytes);
}

}  // namespace tandem::journal::format
