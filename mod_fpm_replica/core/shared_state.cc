// Formatting, slot binding and sequence-locked strings of the two shared blocks.
#include "shared_state.h"

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

// Takes one dead child's row out of the aggregates and frees it.
void release_row(SharedBlock& block, ChildRow& row, SharedState::Released& out) {
    for (size_t slot = 0; slot < kMaxSlots; ++slot) {
        int32_t count = row.in_flight[slot].exchange(0, std::memory_order_relaxed);
        if (count <= 0) continue;  // nothing raised (or forged below zero): nothing to give back
        out.requests += count;
        if (!subtract_clamped(block.slots[slot].in_flight, count)) out.complete = false;
    }
    ++out.rows;
    row.owner_pid.store(0, std::memory_order_release);  // zeroed before it is free
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
    const TrustedSlot& t = trusted_->slots[index];
    return effective_state(static_cast<ReplicaState>(t.lifecycle.load(std::memory_order_relaxed)),
                           static_cast<HealthState>(t.health.load(std::memory_order_relaxed)),
                           open_->slots[index].admin_drained.load(std::memory_order_relaxed) != 0, 0);
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

SharedState SharedState::format(void* open, size_t open_length, void* trusted, size_t trusted_length,
                                 std::string_view nonce_hex) {
    if (open == nullptr || open_length < bytes_needed() || trusted == nullptr ||
        trusted_length < trusted_bytes_needed()) {
        return SharedState(nullptr, nullptr, nullptr);
    }
    std::memset(open, 0, bytes_needed());
    std::memset(trusted, 0, trusted_bytes_needed());
    // Zeroed memory is a valid initial value for every atomic we use, but
    // construct them properly anyway so the object model is respected.
    auto* block = new (open) SharedBlock();
    block->header.magic = kSharedMagic;
    block->header.layout_version = kLayoutVersion;
    block->header.slot_count = kMaxSlots;
    auto* tb = new (trusted) TrustedBlock();
    tb->header.magic = kTrustedMagic;
    tb->header.layout_version = kLayoutVersion;
    tb->header.slot_count = kMaxSlots;
    size_t n = nonce_hex.size() < kNonceLength ? nonce_hex.size() : kNonceLength;
    std::memcpy(tb->header.nonce, nonce_hex.data(), n);
    tb->header.nonce[n] = '\0';
    return SharedState(block, tb, tb);
}

namespace {
bool trusted_is_ours(const void* memory, size_t length) {
    if (memory == nullptr || length < SharedState::trusted_bytes_needed()) return false;
    auto* tb = static_cast<const TrustedBlock*>(memory);
    return tb->header.magic == kTrustedMagic && tb->header.layout_version == kLayoutVersion &&
           tb->header.slot_count == kMaxSlots;
}
}  // namespace

SharedState SharedState::adopt(void* open, size_t open_length, const void* trusted,
                               size_t trusted_length) {
    // Only the trusted header decides: the open one is written by children,
    // and a child that overwrote it must not make the next restart (or a
    // new supervisor) give up on the blocks. The parent stamps it again.
    if (open == nullptr || open_length < bytes_needed() || !trusted_is_ours(trusted, trusted_length)) {
        return SharedState(nullptr, nullptr, nullptr);
    }
    return SharedState(static_cast<SharedBlock*>(open), static_cast<const TrustedBlock*>(trusted), nullptr);
}

SharedState SharedState::writer(void* trusted_rw, size_t length) const {
    if (!valid() || !trusted_is_ours(trusted_rw, length)) return SharedState(nullptr, nullptr, nullptr);
    return SharedState(open_, trusted_, static_cast<TrustedBlock*>(trusted_rw));
}

int SharedState::claim(std::string_view key, uint32_t generation, ReplicaState initial_state) const {
    if (!writable() || key.empty() || key.size() >= kSlotKeyLength) return -1;
    int fresh = -1;
    int oldest_retired = -1;
    for (size_t i = 0; i < kMaxSlots; ++i) {
        TrustedSlot& s = trusted_rw_->slots[i];
        if (s.in_use.load() && key == std::string_view(s.key)) {
            s.claimed_generation.store(generation);
            return static_cast<int>(i);
        }
        if (!s.in_use.load()) {
            if (s.key[0] == '\0') {
                if (fresh < 0) fresh = static_cast<int>(i);
            } else if (oldest_retired < 0 ||
                       s.claimed_generation.load() <
                           trusted_rw_->slots[oldest_retired].claimed_generation.load()) {
                oldest_retired = static_cast<int>(i);
            }
        }
    }
    int chosen = fresh >= 0 ? fresh : oldest_retired;
    if (chosen < 0) return -1;
    TrustedSlot& s = trusted_rw_->slots[chosen];
    std::memset(s.key, 0, sizeof s.key);
    std::memcpy(s.key, key.data(), key.size());
    s.lifecycle.store(static_cast<uint32_t>(initial_state));
    s.health.store(static_cast<uint32_t>(HealthState::Unknown));
    s.pid.store(0);
    s.pid_start_time.store(0);
    s.restarts.store(0);
    s.check_latency_us.store(-1);
    write_slot_release(s, "");
    ReplicaSlot& o = open_->slots[chosen];
    o.in_flight.store(0);
    // Shares of the replica this slot served before are not this one's.
    for (ChildRow& row : open_->children) row.in_flight[chosen].store(0, std::memory_order_relaxed);
    o.requests.store(0);
    o.failures.store(0);
    o.last_pick.store(0);
    o.retry_at_us.store(0);
    o.admin_drained.store(0);
    o.restart_requested.store(0);
    s.claimed_generation.store(generation);
    s.in_use.store(1);
    return chosen;
}

void SharedState::retire_unclaimed(uint32_t generation) const {
    if (!writable()) return;
    for (auto& s : trusted_rw_->slots) {
        if (s.in_use.load() && s.claimed_generation.load() != generation) s.in_use.store(0);
    }
}

int SharedState::find_release(std::string_view symlink_path) const {
    if (!valid() || symlink_path.empty()) return -1;
    for (size_t i = 0; i < kMaxReleaseSlots; ++i) {
        const TrustedRelease& r = trusted_->releases[i];
        if (r.in_use.load() && symlink_path == std::string_view(r.key)) return static_cast<int>(i);
    }
    return -1;
}

int SharedState::claim_release(std::string_view symlink_path) const {
    if (!writable() || symlink_path.empty() || symlink_path.size() >= kSlotKeyLength) return -1;
    if (int found = find_release(symlink_path); found >= 0) return found;
    for (size_t i = 0; i < kMaxReleaseSlots; ++i) {
        TrustedRelease& r = trusted_rw_->releases[i];
        if (r.in_use.load()) continue;
        std::memset(r.key, 0, sizeof r.key);
        std::memcpy(r.key, symlink_path.data(), symlink_path.size());
        r.failed_release_hash.store(0);
        r.prepare_state.store(0);
        r.prepare_handled.store(0);
        write_locked_string(r.prepared_seq, r.prepared, kReleaseLength, "");
        ReleaseSlot& o = open_->releases[i];
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
    open_->header.magic = kSharedMagic;
    open_->header.layout_version = kLayoutVersion;
    open_->header.slot_count = kMaxSlots;
}

void SharedState::reset_in_flight() const {
    if (!open_) return;
    for (auto& s : open_->slots) s.in_flight.store(0);
    for (ChildRow& row : open_->children) {
        for (auto& count : row.in_flight) count.store(0, std::memory_order_relaxed);
        row.owner_pid.store(0, std::memory_order_release);
    }
}

int SharedState::claim_child_row(int32_t pid) const {
    if (!open_ || pid <= 0) return -1;
    for (size_t i = 0; i < kMaxChildRows; ++i) {
        ChildRow& row = open_->children[i];
        int32_t free_mark = 0;
        if (row.owner_pid.load(std::memory_order_relaxed) != 0 ||
            !row.owner_pid.compare_exchange_strong(free_mark, pid, std::memory_order_acquire)) {
            continue;
        }
        for (auto& count : row.in_flight) count.store(0, std::memory_order_relaxed);
        return static_cast<int>(i);
    }
    return -1;
}

SharedState::Released SharedState::release_child(int32_t pid) const {
    Released out;
    if (!open_ || pid <= 0) return out;
    // Every row naming the pid: a row left behind by an exit nobody was told
    // of belongs to a process that is gone too.
    for (ChildRow& row : open_->children) {
        if (row.owner_pid.load(std::memory_order_acquire) == pid) release_row(*open_, row, out);
    }
    return out;
}

SharedState::Released SharedState::release_gone_children(
    const std::function<bool(int32_t pid)>& alive) const {
    Released out;
    if (!open_) return out;
    for (ChildRow& row : open_->children) {
        int32_t owner = row.owner_pid.load(std::memory_order_acquire);
        if (owner != 0 && !alive(owner)) release_row(*open_, row, out);
    }
    return out;
}

}  // namespace fpmr
