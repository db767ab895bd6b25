// Counting requests per release and answer durations in the open block,
// lock-free, by every thread of every httpd child.
#include "request_figures.h"

#include <algorithm>
#include <cstring>

#include "shared_state.h"

namespace fpmr {

namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;
// An entry can be taken over between a find and the count going up; a
// request tries again this many times, then goes uncounted.
constexpr int kCountAttempts = 4;

size_t bucket_of(int64_t duration_us) {
    for (size_t i = 0; i < kDurationBounds; ++i) {
        if (static_cast<double>(duration_us) <= kDurationBoundsSeconds[i] * 1e6) return i;
    }
    return kDurationBounds;
}

int find_entry(const ReleaseSlot& slot, uint64_t hash) {
    for (size_t e = 0; e < kReleaseFigureEntries; ++e) {
        if (slot.figures[e].release_hash.load(std::memory_order_acquire) == hash) {
            return static_cast<int>(e);
        }
    }
    return -1;
}

void start_entry(ReleaseFigures& f, std::string_view release_dir, int64_t now_us) {
    f.requests.store(0, kRelaxed);
    f.server_errors.store(0, kRelaxed);
    f.last_used_us.store(now_us, kRelaxed);
    write_locked_string(f.path_seq, f.path, kFiguresPathLength, release_dir);
}

// A free entry for `hash`, else the one idle longest with nothing in flight.
int claim_entry(ReleaseSlot& slot, uint64_t hash, std::string_view release_dir, int64_t now_us) {
    for (size_t e = 0; e < kReleaseFigureEntries; ++e) {
        uint64_t free_mark = 0;
        ReleaseFigures& f = slot.figures[e];
        if (f.release_hash.load(kRelaxed) == 0 &&
            f.release_hash.compare_exchange_strong(free_mark, hash, std::memory_order_acq_rel)) {
            start_entry(f, release_dir, now_us);
            return static_cast<int>(e);
        }
    }
    int oldest = -1;
    int64_t oldest_use = 0;
    for (size_t e = 0; e < kReleaseFigureEntries; ++e) {
        const ReleaseFigures& f = slot.figures[e];
        if (f.in_flight.load(kRelaxed) > 0) continue;
        int64_t used = f.last_used_us.load(kRelaxed);
        if (oldest < 0 || used < oldest_use) {
            oldest = static_cast<int>(e);
            oldest_use = used;
        }
    }
    if (oldest < 0) return -1;
    ReleaseFigures& f = slot.figures[oldest];
    uint64_t old_hash = f.release_hash.load(kRelaxed);
    if (old_hash == hash) return oldest;  // someone else just took it for us
    if (!f.release_hash.compare_exchange_strong(old_hash, hash, std::memory_order_acq_rel)) return -1;
    start_entry(f, release_dir, now_us);
    return oldest;
}

// The child's own cell for `mark` (entry + 1), taking a cell with nothing
// counted when it has none; -1 when all of its cells count other releases.
int count_in_child_row(const ChildRow& row, int32_t mark) {
    for (int pass = 0; pass < 2; ++pass) {
        for (size_t c = 0; c < kChildReleaseCells; ++c) {
            std::atomic<int32_t>& owner = row.release_cells[2 * c];
            std::atomic<int32_t>& count = row.release_cells[2 * c + 1];
            int32_t seen = owner.load(kRelaxed);
            if (seen != mark) {
                // Second pass: take over a cell that counts nothing now.
                if (pass == 0 || count.load(kRelaxed) != 0) continue;
                if (!owner.compare_exchange_strong(seen, mark, kRelaxed)) continue;
            }
            count.fetch_add(1, kRelaxed);
            if (owner.load(kRelaxed) == mark) return static_cast<int>(c);
            count.fetch_sub(1, kRelaxed);  // another thread of this child took it over
        }
    }
    return -1;
}

}  // namespace

void observe_duration(DurationHistogram& histogram, int64_t duration_us) {
    if (duration_us < 0) duration_us = 0;
    histogram.buckets[bucket_of(duration_us)].fetch_add(1, kRelaxed);
    histogram.sum_us.fetch_add(static_cast<uint64_t>(duration_us), kRelaxed);
}

void clear_histogram(DurationHistogram& histogram) {
    for (auto& bucket : histogram.buckets) bucket.store(0, kRelaxed);
    histogram.sum_us.store(0, kRelaxed);
}

ReleaseTicket begin_release_request(const SharedState& shared, int release_slot, int child_row,
                                    std::string_view release_dir, int64_t now_us) {
    ReleaseTicket ticket;
    if (!shared.valid() || release_slot < 0 ||
        static_cast<uint32_t>(release_slot) >= shared.layout().release_count || release_dir.empty()) {
        return ticket;
    }
    const uint64_t hash = release_hash(release_dir);
    ReleaseSlot& slot = shared.release_slot(release_slot);
    for (int attempt = 0; attempt < kCountAttempts; ++attempt) {
        int e = find_entry(slot, hash);
        if (e < 0) e = claim_entry(slot, hash, release_dir, now_us);
        if (e < 0) return ticket;
        ReleaseFigures& f = slot.figures[e];
        f.in_flight.fetch_add(1);
        if (f.release_hash.load(std::memory_order_acquire) != hash) {
            f.in_flight.fetch_sub(1);  // taken over for another release meanwhile
            continue;
        }
        f.last_used_us.store(now_us, kRelaxed);
        ticket.entry = release_slot * static_cast<int>(kReleaseFigureEntries) + e;
        if (child_row >= 0 && static_cast<uint32_t>(child_row) < shared.layout().child_row_count) {
            ticket.child_cell = count_in_child_row(shared.child_row(child_row), ticket.entry + 1);
            if (ticket.child_cell >= 0) ticket.child_row = child_row;
        }
        return ticket;
    }
    return ticket;
}

void end_release_request(const SharedState& shared, const ReleaseTicket& ticket) {
    if (!shared.valid() || ticket.entry < 0) return;
    // The row before the aggregate (as SharedState::end_attempt): a child
    // killed in between leaves the aggregate too high, never too low.
    if (ticket.child_row >= 0 && ticket.child_cell >= 0) {
        shared.child_row(ticket.child_row).release_cells[2 * ticket.child_cell + 1].fetch_sub(1, kRelaxed);
    }
    shared.release_figures(ticket.entry).in_flight.fetch_sub(1);
}

void record_release_answer(const SharedState& shared, const ReleaseTicket& ticket,
                           uint64_t release_hash, int http_status) {
    if (!shared.valid() || ticket.entry < 0) return;
    ReleaseFigures& f = shared.release_figures(ticket.entry);
    if (f.release_hash.load(kRelaxed) != release_hash) return;
    f.requests.fetch_add(1, kRelaxed);
    if (http_status >= 500) f.server_errors.fetch_add(1, kRelaxed);
}

void record_member_duration(const SharedState& shared, int slot, uint64_t release_hash,
                            int64_t duration_us, int64_t now_us) {
    if (!shared.valid() || slot < 0 || static_cast<uint32_t>(slot) >= shared.layout().slot_count) return;
    MemberReleaseDurations* entries = shared.slot(slot).durations;
    MemberReleaseDurations* target = nullptr;
    for (size_t e = 0; e < kMemberReleaseEntries && !target; ++e) {
        if (entries[e].in_use.load(std::memory_order_acquire) &&
            entries[e].release_hash.load(kRelaxed) == release_hash) {
            target = &entries[e];
        }
    }
    if (!target) {
        // A new release for this member: an entry never used, else the one
        // used longest ago, starting from nothing.
        MemberReleaseDurations* oldest = &entries[0];
        for (size_t e = 0; e < kMemberReleaseEntries; ++e) {
            if (!entries[e].in_use.load(kRelaxed)) {
                oldest = &entries[e];
                break;
            }
            if (entries[e].last_used_us.load(kRelaxed) < oldest->last_used_us.load(kRelaxed)) {
                oldest = &entries[e];
            }
        }
        target = oldest;
        clear_histogram(target->durations);
        target->release_hash.store(release_hash, kRelaxed);
        target->in_use.store(1, std::memory_order_release);
    }
    target->last_used_us.store(now_us, kRelaxed);
    observe_duration(target->durations, duration_us);
}

std::vector<ReleaseFiguresView> read_release_figures(const SharedState& shared, int release_slot) {
    std::vector<ReleaseFiguresView> out;
    if (!shared.valid() || release_slot < 0 ||
        static_cast<uint32_t>(release_slot) >= shared.layout().release_count) {
        return out;
    }
    const ReleaseSlot& slot = shared.release_slot(release_slot);
    for (const ReleaseFigures& f : slot.figures) {
        if (f.release_hash.load(std::memory_order_acquire) == 0) continue;
        std::optional<std::string> path = read_locked_string(f.path_seq, f.path, kFiguresPathLength);
        if (!path || path->empty() || release_hash(*path) != f.release_hash.load(kRelaxed)) continue;
        // Two children may have claimed two entries for one release at once.
        auto same = std::find_if(out.begin(), out.end(),
                                 [&](const ReleaseFiguresView& v) { return v.release == *path; });
        ReleaseFiguresView& view = same != out.end() ? *same : out.emplace_back();
        view.release = *path;
        view.in_flight += std::max<int64_t>(0, f.in_flight.load(kRelaxed));
        view.requests += f.requests.load(kRelaxed);
        view.server_errors += f.server_errors.load(kRelaxed);
    }
    return out;
}

uint64_t DurationsView::count() const {
    uint64_t total = 0;
    for (uint64_t b : buckets) total += b;
    return total;
}

std::vector<DurationsView> read_member_durations(const SharedState& shared, int slot) {
    std::vector<DurationsView> out;
    if (!shared.valid() || slot < 0 || static_cast<uint32_t>(slot) >= shared.layout().slot_count) return out;
    for (const MemberReleaseDurations& e : shared.slot(slot).durations) {
        if (!e.in_use.load(std::memory_order_acquire)) continue;
        DurationsView view;
        view.release_hash = e.release_hash.load(kRelaxed);
        for (size_t b = 0; b < kDurationBuckets; ++b) view.buckets[b] = e.durations.buckets[b].load(kRelaxed);
        view.sum_us = e.durations.sum_us.load(kRelaxed);
        out.push_back(view);
    }
    return out;
}

}  // namespace fpmr
