// Formatting, slot binding and sequence-locked strings of the two shared blocks.
#include "shared_state.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <thread>

namespace fpmr {

namespace {

// Bounds on sequence-lock retries. A writer holds the lock for the time of
// a 512-byte copy, so a reader that sees it odd this many times in a row
// (yielding between tries) is looking at a writer that died or a forgery.
constexpr int kLockedStringAttempts = 2000;

void pause_between_attempts(int attempt) {
    if (attempt % 64 == 63) std::this_thread::yield();
}

// Compare-and-swap tries when the parent takes a dead child's share out of
// an aggregate: each failed try means another child changed it meanwhile,
// so a legitimate one succeeds within a few; a child rewriting it in a loop
// must not hold the httpd parent.
constexpr int kReleaseAttempts = 1000;

// total -= amount, floored at 0; amount is 0 or more, so nothing overflows.
bool subtract_clamped(std::atomic<int64_t>& total, int64_t amount) {
    int64_t current = total.load(std::memory_order_relaxed);
    for (int attempt = 0; attempt < kReleaseAttempts; ++attempt) {
        int64_t next = current > amount ? current - amount : 0;
        if (total.compare_exchange_weak(current, next, std::memory_order_relaxed)) return true;
    }
    return false;
}

// Arrays start on a cache line of their own, and each child's row too:
// every child writes its own row, and would otherwise share a line with
// its neighbour's.
constexpr uint64_t kArrayAlignment = 64;
uint64_t align_up(uint64_t n) { return (n + kArrayAlignment - 1) / kArrayAlignment * kArrayAlignment; }

// Twice what the configuration asks for, within [low, high].
uint32_t with_room(size_t wanted, uint32_t low, uint32_t high) {
    uint64_t doubled = 2 * static_cast<uint64_t>(wanted);
    return static_cast<uint32_t>(std::clamp<uint64_t>(doubled, low, high));
}

}  // namespace

const char* state_name(ReplicaState state) {
    switch (state) {
        case ReplicaState::Starting: return "starting";
        case ReplicaState::Ready: return "ready";
        case ReplicaState::Draining: return "draining";
        case ReplicaState::Stopped: return "stopped";
        case ReplicaState::Failed: return "failed";
    }
    return "unknown";
}

const char* health_name(HealthState health) {
    switch (health) {
        case HealthState::Unknown: return "unknown";
        case HealthState::Passing: return "passing";
        case HealthState::Failing: return "failing";
    }
    return "unknown";
}

uint64_t text_hash(std::string_view text) {
    if (text.empty()) return 0;
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : text) {
        h ^= c;
        h *= 1099511628211ull;
    }
    return h ? h : 1;
}

bool write_locked_string(std::atomic<uint32_t>& seq, char* buffer, size_t size,
                         std::string_view text) {
    size_t n = text.size() < size - 1 ? text.size() : size - 1;
    uint32_t even = 0;
    bool owned = false;
    for (int attempt = 0; attempt < kLockedStringAttempts && !owned; ++attempt) {
        even = seq.load(std::memory_order_relaxed);
        if (even & 1u) {
            pause_between_attempts(attempt);
            continue;
        }
        owned = seq.compare_exchange_weak(even, even + 1, std::memory_order_acquire,
                                          std::memory_order_relaxed);
    }
    if (!owned) return false;
    std::atomic_thread_fence(std::memory_order_release);
    for (size_t i = 0; i < size; ++i) {
        __atomic_store_n(&buffer[i], i < n ? text[i] : '\0', __ATOMIC_RELAXED);
    }
    seq.store(even + 2, std::memory_order_release);  // even: done
    return true;
}

std::optional<std::string> read_locked_string(const std::atomic<uint32_t>& seq, const char* buffer,
                                              size_t size) {
    std::string out(size, '\0');
    for (int attempt = 0; attempt < kLockedStringAttempts; ++attempt) {
        uint32_t before = seq.load(std::memory_order_acquire);
        if (before & 1u) {
            pause_between_attempts(attempt);
            continue;
        }
        for (size_t i = 0; i < size; ++i) out[i] = __atomic_load_n(&buffer[i], __ATOMIC_RELAXED);
        std::atomic_thread_fence(std::memory_order_acquire);
        if (seq.load(std::memory_order_relaxed) != before) continue;
        size_t end = out.find('\0');
        out.resize(end == std::string::npos ? size - 1 : end);
        return out;
    }
    return std::nullopt;
}

bool clear_stuck_string(std::atomic<uint32_t>& seq, uint32_t stuck_value, char* buffer, size_t size) {
    if (!(stuck_value & 1u)) return false;
    uint32_t expected = stuck_value;
    if (!seq.compare_exchange_strong(expected, stuck_value + 2)) return false;  // odd: ours now
    for (size_t i = 0; i < size; ++i) __atomic_store_n(&buffer[i], '\0', __ATOMIC_RELAXED);
    seq.store(stuck_value + 3, std::memory_order_release);
    return true;
}

bool write_slot_release(TrustedSlot& slot, std::string_view release_dir) {
    std::string_view kept = release_dir.substr(0, kReleaseLength - 1);
    if (!write_locked_string(slot.release_seq, slot.release, kReleaseLength, kept)) return false;
    slot.release_hash.store(release_hash(kept), std::memory_order_release);
    return true;
}

std::optional<std::string> read_slot_release(const TrustedSlot& slot) {
    return read_locked_string(slot.release_seq, slot.release, kReleaseLength);
}

ReplicaState effective_state(ReplicaState lifecycle, HealthState health, bool admin_drained,
                             int64_t retry_at_us) {
    if (lifecycle != ReplicaState::Ready) return lifecycle;
    if (health == HealthState::Failing || retry_at_us != 0) return ReplicaState::Failed;
    if (admin_drained) return ReplicaState::Draining;
    return ReplicaState::Ready;
}

ReplicaState SharedState::state_of(int index) const {
    const TrustedSlot& t = trusted(index);
    return effective_state(static_cast<ReplicaState>(t.lifecycle.load(std::memory_order_relaxed)),
                           static_cast<HealthState>(t.health.load(std::memory_order_relaxed)),
                           slot(index).admin_drained.load(std::memory_order_relaxed) != 0, 0);
}

const char* prepare_state_name(PrepareState state) {
    switch (state) {
        case PrepareState::None: return "none";
        case PrepareState::Starting: return "starting";
        case PrepareState::Ready: return "ready";
        case PrepareState::Failed: return "failed";
    }
    return "unknown";
}

namespace {
// Where everything goes in blocks of these counts, unbounded: 64-bit
// arithmetic, which the counts (each below 2^32) cannot overflow.
SharedLayout place(uint32_t slots, uint32_t child_rows, uint32_t releases, uint64_t* total) {
    uint64_t open_slots = align_up(sizeof(SharedHeader));
    uint64_t open_releases = align_up(open_slots + uint64_t{slots} * sizeof(ReplicaSlot));
    uint64_t open_child_rows = align_up(open_releases + uint64_t{releases} * sizeof(ReleaseSlot));
    uint64_t stride =
        align_up((1 + uint64_t{slots} + 2 * kChildReleaseCells) * sizeof(std::atomic<int32_t>));
    uint64_t open_bytes = open_child_rows + uint64_t{child_rows} * stride;
    uint64_t trusted_slots = align_up(sizeof(TrustedHeader));
    uint64_t trusted_releases = align_up(trusted_slots + uint64_t{slots} * sizeof(TrustedSlot));
    uint64_t trusted_bytes =
        align_up(trusted_releases + uint64_t{releases} * sizeof(TrustedRelease));
    *total = open_bytes + trusted_bytes;
    SharedLayout layout;
    if (*total > kMaxSharedBytes) return layout;  // not to be used: sizes may not fit a size_t
    layout.slot_count = slots;
    layout.child_row_count = child_rows;
    layout.release_count = releases;
    layout.open_slots = static_cast<size_t>(open_slots);
    layout.open_releases = static_cast<size_t>(open_releases);
    layout.open_child_rows = static_cast<size_t>(open_child_rows);
    layout.child_row_stride = static_cast<size_t>(stride);
    layout.open_bytes = static_cast<size_t>(open_bytes);
    layout.trusted_slots = static_cast<size_t>(trusted_slots);
    layout.trusted_releases = static_cast<size_t>(trusted_releases);
    layout.trusted_bytes = static_cast<size_t>(trusted_bytes);
    return layout;
}
}  // namespace

std::optional<SharedLayout> SharedLayout::of(uint32_t slots, uint32_t child_rows,
                                             uint32_t releases) {
    if (slots == 0 || slots > kMaxSlotCapacity || child_rows == 0 || child_rows > kMaxChildRows ||
        releases == 0 || releases > kMaxReleaseCapacity) {
        return std::nullopt;
    }
    uint64_t total = 0;
    SharedLayout layout = place(slots, child_rows, releases, &total);
    if (total > kMaxSharedBytes) return std::nullopt;
    return layout;
}

uint64_t SharedLayout::bytes_of(uint32_t slots, uint32_t child_rows, uint32_t releases) {
    uint64_t total = 0;
    place(slots, child_rows, releases, &total);
    return total;
}

uint32_t child_rows_for(size_t server_limit) {
    uint64_t rows = 2 * static_cast<uint64_t>(std::min<size_t>(server_limit, kMaxChildRows)) + 16;
    return static_cast<uint32_t>(std::clamp<uint64_t>(rows, kMinChildRows, kMaxChildRows));
}

std::optional<SharedLayout> layout_for(const SharedDemand& demand) {
    if (demand.members > kMaxSlotCapacity || demand.releases > kMaxReleaseCapacity) {
        return std::nullopt;
    }
    uint32_t rows = child_rows_for(demand.server_limit);
    if (auto roomy = SharedLayout::of(with_room(demand.members, kMinSlotCapacity, kMaxSlotCapacity),
                                      rows,
                                      with_room(demand.releases, kMinReleaseCapacity,
                                                kMaxReleaseCapacity))) {
        return roomy;
    }
    // Room to grow is given up before the configuration is.
    return SharedLayout::of(static_cast<uint32_t>(std::max<size_t>(demand.members, 1)), rows,
                            static_cast<uint32_t>(std::max<size_t>(demand.releases, 1)));
}

namespace {

// The fields both blocks' headers share.
void stamp_header(BlockHeader& header, uint32_t magic, const SharedLayout& l) {
    header.magic = magic;
    header.layout_version = kLayoutVersion;
    header.slot_count = l.slot_count;
    header.child_row_count = l.child_row_count;
    header.release_count = l.release_count;
}

}  // namespace

SharedState SharedState::format(void* open, size_t open_length, void* trusted, size_t trusted_length,
                                 const SharedLayout& layout, std::string_view nonce_hex) {
    std::optional<SharedLayout> checked =
        SharedLayout::of(layout.slot_count, layout.child_row_count, layout.release_count);
    if (open == nullptr || trusted == nullptr || !checked || open_length != checked->open_bytes ||
        trusted_length != checked->trusted_bytes) {
        return SharedState();
    }
    const SharedLayout& l = *checked;
    std::memset(open, 0, l.open_bytes);
    std::memset(trusted, 0, l.trusted_bytes);
    // Zeroed memory is a valid initial value for every atomic we use, but
    // construct them properly anyway so the object model is respected.
    auto* open_bytes = static_cast<char*>(open);
    auto* trusted_bytes = static_cast<char*>(trusted);
    auto* block = new (open) SharedBlock();
    stamp_header(block->header, kSharedMagic, l);
    auto* tb = new (trusted) TrustedBlock();
    stamp_header(tb->header, kTrustedMagic, l);
    for (uint32_t i = 0; i < l.slot_count; ++i) {
        new (open_bytes + l.open_slots + i * sizeof(ReplicaSlot)) ReplicaSlot();
        new (trusted_bytes + l.trusted_slots + i * sizeof(TrustedSlot)) TrustedSlot();
    }
    for (uint32_t i = 0; i < l.release_count; ++i) {
        new (open_bytes + l.open_releases + i * sizeof(ReleaseSlot)) ReleaseSlot();
        new (trusted_bytes + l.trusted_releases + i * sizeof(TrustedRelease)) TrustedRelease();
    }
    for (uint32_t row = 0; row < l.child_row_count; ++row) {
        char* cells = open_bytes + l.open_child_rows + row * l.child_row_stride;
        for (uint32_t cell = 0; cell < 1 + l.slot_count + 2 * kChildReleaseCells; ++cell) {
            new (cells + cell * sizeof(std::atomic<int32_t>)) std::atomic<int32_t>(0);
        }
    }
    size_t n = nonce_hex.size() < kNonceLength ? nonce_hex.size() : kNonceLength;
    std::memcpy(tb->header.nonce, nonce_hex.data(), n);
    tb->header.nonce[n] = '\0';
    return SharedState(open_bytes, trusted_bytes, trusted_bytes, l);
}

namespace {
// The layout a trusted block of `length` bytes says it has, when it is ours
// and exactly that long.
std::optional<SharedLayout> trusted_layout(const void* memory, size_t length) {
    if (memory == nullptr || length < sizeof(TrustedHeader)) return std::nullopt;
    const TrustedHeader& h = static_cast<const TrustedBlock*>(memory)->header;
    if (h.magic != kTrustedMagic || h.layout_version != kLayoutVersion) return std::nullopt;
    std::optional<SharedLayout> layout =
        SharedLayout::of(h.slot_count, h.child_row_count, h.release_count);
    if (!layout || layout->trusted_bytes != length) return std::nullopt;
    return layout;
}
}  // namespace

SharedState SharedState::adopt(void* open, size_t open_length, const void* trusted,
                               size_t trusted_length) {
    // Only the trusted header decides: the open one is written by children,
    // and a child that overwrote it must not make the next restart (or a
    // new supervisor) give up on the blocks, or read them at another size.
    // The parent stamps it again.
    std::optional<SharedLayout> layout = trusted_layout(trusted, trusted_length);
    if (open == nullptr || !layout || open_length != layout->open_bytes) return SharedState();
    return SharedState(static_cast<char*>(open), static_cast<const char*>(trusted), nullptr, *layout);
}

SharedState SharedState::writer(void* trusted_rw, size_t length) const {
    std::optional<SharedLayout> layout = trusted_layout(trusted_rw, length);
    if (!valid() || !layout || !(*layout == layout_)) return SharedState();
    return SharedState(open_, trusted_, static_cast<char*>(trusted_rw), layout_);
}

void SharedState::bind_slot(int index, std::string_view key, uint32_t generation,
                            ReplicaState initial_state) const {
    TrustedSlot& s = trusted_rw(index);
    std::memset(s.key, 0, sizeof s.key);
    std::memcpy(s.key, key.data(), key.size());
    s.lifecycle.store(static_cast<uint32_t>(initial_state));
    s.health.store(static_cast<uint32_t>(HealthState::Unknown));
    s.pid.store(0);
    s.pid_start_time.store(0);
    s.restarts.store(0);
    s.check_latency_us.store(-1);
    s.trouble.store(static_cast<uint32_t>(MasterTrouble::None));
    s.trouble_detail.store(0);
    s.warmup_scripts.store(-1);
    s.warmup_us.store(-1);
    s.warmup_token_high.store(0);
    s.warmup_token_low.store(0);
    write_slot_release(s, "");
    ReplicaSlot& o = slot(index);
    o.in_flight.store(0);
    // Shares of the replica this slot served before are not this one's.
    for (uint32_t row = 0; row < layout_.child_row_count; ++row) {
        child_row(static_cast<int>(row)).in_flight[index].store(0, std::memory_order_relaxed);
    }
    o.requests.store(0);
    o.failures.store(0);
    o.last_pick.store(0);
    o.retry_at_us.store(0);
    o.admin_drained.store(0);
    o.restart_requested.store(0);
    s.claimed_generation.store(generation);
    s.in_use.store(1);
}

std::optional<std::vector<int>> SharedState::claim_together(const std::vector<Claim>& claims,
                                                            uint32_t generation) const {
    if (!writable()) return std::nullopt;
    for (const Claim& c : claims) {
        if (c.key.empty() || c.key.size() >= kSlotKeyLength) return std::nullopt;
    }
    // One pass over the slots: the ones these keys already have, and the
    // free ones (never-used in index order, enough for every key; retired).
    std::vector<int> chosen(claims.size(), -1);
    std::vector<int> never_used;
    std::vector<int> retired;
    for (uint32_t i = 0; i < layout_.slot_count; ++i) {
        const TrustedSlot& s = trusted_rw(static_cast<int>(i));
        if (s.in_use.load()) {
            for (size_t k = 0; k < claims.size(); ++k) {
                if (chosen[k] < 0 && claims[k].key == std::string_view(s.key)) {
                    chosen[k] = static_cast<int>(i);
                    break;
                }
            }
        } else if (s.key[0] == '\0') {
            if (never_used.size() < claims.size()) never_used.push_back(static_cast<int>(i));
        } else {
            retired.push_back(static_cast<int>(i));
        }
    }
    size_t unbound = static_cast<size_t>(std::count(chosen.begin(), chosen.end(), -1));
    if (unbound > never_used.size() + retired.size()) return std::nullopt;
    // The slot retired longest ago is reused first: its replica is the
    // least likely to still have a master draining under the supervisor.
    std::stable_sort(retired.begin(), retired.end(), [this](int a, int b) {
        return trusted_rw(a).claimed_generation.load() < trusted_rw(b).claimed_generation.load();
    });
    never_used.insert(never_used.end(), retired.begin(), retired.end());
    size_t next_free = 0;
    for (size_t k = 0; k < claims.size(); ++k) {
        if (chosen[k] >= 0) {
            trusted_rw(chosen[k]).claimed_generation.store(generation);
        } else {
            chosen[k] = never_used[next_free++];
            bind_slot(chosen[k], claims[k].key, generation, claims[k].initial_state);
        }
    }
    return chosen;
}

int SharedState::claim(std::string_view key, uint32_t generation, ReplicaState initial_state) const {
    std::optional<std::vector<int>> slots =
        claim_together({Claim{std::string(key), initial_state}}, generation);
    return slots ? slots->front() : -1;
}

size_t SharedState::free_slots() const {
    if (!valid()) return 0;
    size_t free = 0;
    for (uint32_t i = 0; i < layout_.slot_count; ++i) {
        if (!trusted(static_cast<int>(i)).in_use.load()) ++free;
    }
    return free;
}

SharedState::Usage SharedState::usage() const {
    Usage u;
    if (!valid()) return u;
    u.members = layout_.slot_count;
    u.members_used = static_cast<uint32_t>(layout_.slot_count - free_slots());
    u.releases = layout_.release_count;
    for (uint32_t i = 0; i < layout_.release_count; ++i) {
        if (trusted_release(static_cast<int>(i)).in_use.load()) ++u.releases_used;
    }
    u.child_rows = layout_.child_row_count;
    for (uint32_t r = 0; r < layout_.child_row_count; ++r) {
        if (child_row(static_cast<int>(r)).owner_pid.load(std::memory_order_relaxed) != 0) ++u.child_rows_used;
    }
    return u;
}

void SharedState::retire_unclaimed(uint32_t generation) const {
    if (!writable()) return;
    for (uint32_t i = 0; i < layout_.slot_count; ++i) {
        TrustedSlot& s = trusted_rw(static_cast<int>(i));
        if (s.in_use.load() && s.claimed_generation.load() != generation) s.in_use.store(0);
    }
}

int SharedState::find_release(std::string_view symlink_path) const {
    if (!valid() || symlink_path.empty()) return -1;
    for (uint32_t i = 0; i < layout_.release_count; ++i) {
        const TrustedRelease& r = trusted_release(static_cast<int>(i));
        if (r.in_use.load() && symlink_path == std::string_view(r.key)) return static_cast<int>(i);
    }
    return -1;
}

int SharedState::claim_release(std::string_view symlink_path) const {
    if (!writable() || symlink_path.empty() || symlink_path.size() >= kSlotKeyLength) return -1;
    if (int found = find_release(symlink_path); found >= 0) return found;
    for (uint32_t i = 0; i < layout_.release_count; ++i) {
        TrustedRelease& r = trusted_release_rw(static_cast<int>(i));
        if (r.in_use.load()) continue;
        std::memset(r.key, 0, sizeof r.key);
        std::memcpy(r.key, symlink_path.data(), symlink_path.size());
        r.failed_release_hash.store(0);
        r.prepare_state.store(0);
        r.prepare_handled.store(0);
        write_locked_string(r.prepared_seq, r.prepared, kReleaseLength, "");
        write_locked_string(r.previous_seq, r.previous, kReleaseLength, "");
        ReleaseSlot& o = release_slot(static_cast<int>(i));
        o.error_logged_us.store(0);
        o.prepare_requests.store(0);
        o.requested_seq.store(0);
        std::memset(o.requested, 0, sizeof o.requested);
        r.in_use.store(1);
        return static_cast<int>(i);
    }
    return -1;
}

void SharedState::stamp_open_header() const {
    if (!writable()) return;
    stamp_header(block()->header, kSharedMagic, layout_);
}

void SharedState::reset_in_flight() const {
    if (!valid()) return;
    for (uint32_t i = 0; i < layout_.slot_count; ++i) slot(static_cast<int>(i)).in_flight.store(0);
    for (uint32_t r = 0; r < layout_.child_row_count; ++r) {
        ChildRow row = child_row(static_cast<int>(r));
        for (uint32_t i = 0; i < layout_.slot_count; ++i) {
            row.in_flight[i].store(0, std::memory_order_relaxed);
        }
        for (size_t c = 0; c < 2 * kChildReleaseCells; ++c) {
            row.release_cells[c].store(0, std::memory_order_relaxed);
        }
        row.owner_pid.store(0, std::memory_order_release);
    }
    for (uint32_t i = 0; i < layout_.release_count; ++i) {
        for (ReleaseFigures& f : release_slot(static_cast<int>(i)).figures) f.in_flight.store(0);
    }
}

int SharedState::claim_child_row(int32_t pid) const {
    if (!valid() || pid <= 0) return -1;
    for (uint32_t r = 0; r < layout_.child_row_count; ++r) {
        ChildRow row = child_row(static_cast<int>(r));
        int32_t free_mark = 0;
        if (row.owner_pid.load(std::memory_order_relaxed) != 0 ||
            !row.owner_pid.compare_exchange_strong(free_mark, pid, std::memory_order_acquire)) {
            continue;
        }
        for (uint32_t i = 0; i < layout_.slot_count; ++i) {
            row.in_flight[i].store(0, std::memory_order_relaxed);
        }
        for (size_t c = 0; c < 2 * kChildReleaseCells; ++c) {
            row.release_cells[c].store(0, std::memory_order_relaxed);
        }
        return static_cast<int>(r);
    }
    return -1;
}

// Takes one dead child's row out of the aggregates and frees it.
void SharedState::release_row(const ChildRow& row, Released& out) const {
    for (uint32_t i = 0; i < layout_.slot_count; ++i) {
        int32_t count = row.in_flight[i].exchange(0, std::memory_order_relaxed);
        if (count <= 0) continue;  // nothing raised (or forged below zero): nothing to give back
        out.requests += count;
        if (!subtract_clamped(slot(static_cast<int>(i)).in_flight, count)) out.complete = false;
    }
    // Its requests in flight per release, the same way; an entry number
    // beyond the block's (forged) names nothing.
    const uint64_t entries = uint64_t{layout_.release_count} * kReleaseFigureEntries;
    for (size_t c = 0; c < kChildReleaseCells; ++c) {
        int64_t entry = int64_t{row.release_cells[2 * c].exchange(0, std::memory_order_relaxed)} - 1;
        int32_t count = row.release_cells[2 * c + 1].exchange(0, std::memory_order_relaxed);
        if (entry < 0 || static_cast<uint64_t>(entry) >= entries || count <= 0) continue;
        if (!subtract_clamped(release_figures(static_cast<int>(entry)).in_flight, count)) out.complete = false;
    }
    ++out.rows;
    row.owner_pid.store(0, std::memory_order_release);  // zeroed before it is free
}

SharedState::Released SharedState::release_child(int32_t pid) const {
    Released out;
    if (!valid() || pid <= 0) return out;
    // Every row naming the pid: a row left behind by an exit nobody was told
    // of belongs to a process that is gone too.
    for (uint32_t r = 0; r < layout_.child_row_count; ++r) {
        ChildRow row = child_row(static_cast<int>(r));
        if (row.owner_pid.load(std::memory_order_acquire) == pid) release_row(row, out);
    }
    return out;
}

SharedState::Released SharedState::release_gone_children(
    const std::function<bool(int32_t pid)>& alive) const {
    Released out;
    if (!valid()) return out;
    for (uint32_t r = 0; r < layout_.child_row_count; ++r) {
        ChildRow row = child_row(static_cast<int>(r));
        int32_t owner = row.owner_pid.load(std::memory_order_acquire);
        if (owner != 0 && !alive(owner)) release_row(row, out);
    }
    return out;
}

}  // namespace fpmr
