// What httpd children count about finished and running requests, beside the
// per-member counters: request durations as a histogram, and per release the
// requests in flight (what `fpm-replica prune` must not delete under) and the
// PHP answers given from it (what a watched deploy judges). Plain data in
// the open block (shared_state.h), so every figure here is untrusted: it is
// shown and acted on by the operator's tools, never by root.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fpmr {

class SharedState;

// Prometheus' default buckets, in seconds; a last bucket above them (+Inf).
constexpr size_t kDurationBounds = 11;
constexpr double kDurationBoundsSeconds[kDurationBounds] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                             0.5,   1,    2.5,   5,    10};
constexpr size_t kDurationBuckets = kDurationBounds + 1;

// Non-cumulative counts per bucket (the renderer sums them) and the sum.
struct DurationHistogram {
    std::atomic<uint64_t> buckets[kDurationBuckets];
    std::atomic<uint64_t> sum_us;
};
void observe_duration(DurationHistogram& histogram, int64_t duration_us);
void clear_histogram(DurationHistogram& histogram);

// The durations of one member's answers for one release (namespace mode: the
// one its master serves; realpath mode: the current and, for a moment after
// a flip, the last one). Keyed by release_hash (0: requests of no release).
struct MemberReleaseDurations {
    std::atomic<uint64_t> release_hash;
    std::atomic<uint32_t> in_use;  // 0 until first claimed (hash 0 is a key too)
    std::atomic<int64_t> last_used_us;
    DurationHistogram durations;
};
constexpr size_t kMemberReleaseEntries = 3;

// One release a symlink named recently: its requests in flight (every
// pinned request, static or PHP, from post_read_request to the end of the
// request) and its PHP answers. Keyed by release_hash; the path is kept for
// the status document.
constexpr size_t kFiguresPathLength = 512;
struct ReleaseFigures {
    std::atomic<uint64_t> release_hash;  // 0: free
    std::atomic<int64_t> last_used_us;
    std::atomic<int64_t> in_flight;
    std::atomic<uint64_t> requests;       // PHP requests answered (steered to a replica)
    std::atomic<uint64_t> server_errors;  // of those, answered 5xx (php-fpm's or a gateway error)
    std::atomic<uint32_t> path_seq;       // sequence lock of `path`
    char path[kFiguresPathLength];
};
// Current, previous, one being prepared and a few old ones still finishing.
constexpr size_t kReleaseFigureEntries = 8;

// Per child row: which release entries this child has requests in flight
// on, so the parent can take a dead child's share back out (as the member
// counts). Pairs of cells: [entry number + 1 (0: free), count].
constexpr size_t kChildReleaseCells = 8;

// A pinned request's place in its release's figures, for its end.
struct ReleaseTicket {
    int entry = -1;       // SharedState::release_figures number; -1: not counted
    int child_row = -1;   // the row and cell that also count it (-1: none)
    int child_cell = -1;
};

// A request pinned to `release_dir` (of release slot `release_slot`)
// starts: in flight on its entry, made on first use (a free entry, else the
// one idle longest with nothing in flight). Not counted (entry -1) when every
// entry has requests in flight.
ReleaseTicket begin_release_request(const SharedState& shared, int release_slot, int child_row,
                                    std::string_view release_dir, int64_t now_us);
void end_release_request(const SharedState& shared, const ReleaseTicket& ticket);
// A PHP request pinned to the ticket's release got its answer.
void record_release_answer(const SharedState& shared, const ReleaseTicket& ticket,
                           uint64_t release_hash, int http_status);
// Member slot `slot` answered a request of release `release_hash` in `duration_us`.
void record_member_duration(const SharedState& shared, int slot, uint64_t release_hash,
                            int64_t duration_us, int64_t now_us);

// What the status document shows of them.
struct ReleaseFiguresView {
    std::string release;
    int64_t in_flight = 0;  // clamped at 0 (the block is writable by children)
    uint64_t requests = 0;
    uint64_t server_errors = 0;
};
std::vector<ReleaseFiguresView> read_release_figures(const SharedState& shared, int release_slot);
struct DurationsView {
    uint64_t release_hash = 0;
    uint64_t buckets[kDurationBuckets] = {};  // non-cumulative
    uint64_t sum_us = 0;
    uint64_t count() const;
};
std::vector<DurationsView> read_member_durations(const SharedState& shared, int slot);

}  // namespace fpmr
