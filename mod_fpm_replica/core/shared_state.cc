// Slot binding and formatting of the shared block.
#include "shared_state.h"

#include <cstring>
#include <new>

namespace fpmr {

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

uint64_t text_hash(std::string_view text) {
    if (text.empty()) return 0;
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : text) {
        h ^= c;
        h *= 1099511628211ull;
    }
    return h ? h : 1;
}

void write_locked_string(std::atomic<uint32_t>& seq, char* buffer, size_t size,
                         std::string_view text) {
    size_t n = text.size() < size - 1 ? text.size() : size - 1;
    seq.fetch_add(1, std::memory_order_acq_rel);  // odd: writing
    std::atomic_thread_fence(std::memory_order_release);
    for (size_t i = 0; i < size; ++i) {
        __atomic_store_n(&buffer[i], i < n ? text[i] : '\0', __ATOMIC_RELAXED);
    }
    seq.fetch_add(1, std::memory_order_release);  // even: done
}

std::string read_locked_string(const std::atomic<uint32_t>& seq, const char* buffer, size_t size) {
    std::string out(size, '\0');
    for (;;) {
        uint32_t before = seq.load(std::memory_order_acquire);
        if (before & 1u) continue;
        for (size_t i = 0; i < size; ++i) out[i] = __atomic_load_n(&buffer[i], __ATOMIC_RELAXED);
        std::atomic_thread_fence(std::memory_order_acquire);
        if (seq.load(std::memory_order_relaxed) == before) break;
    }
    out.resize(out.find('\0') == std::string::npos ? size - 1 : out.find('\0'));
    return out;
}

void write_slot_release(ReplicaSlot& slot, std::string_view release_dir) {
    write_locked_string(slot.release_seq, slot.release, kReleaseLength, release_dir);
    std::string_view kept = release_dir.substr(0, kReleaseLength - 1);
    slot.release_hash.store(release_hash(kept), std::memory_order_release);
}

std::string read_slot_release(const ReplicaSlot& slot) {
    return read_locked_string(slot.release_seq, slot.release, kReleaseLength);
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

SharedState SharedState::format(void* memory, size_t length, std::string_view nonce_hex) {
    if (memory == nullptr || length < bytes_needed()) return SharedState(nullptr);
    std::memset(memory, 0, bytes_needed());
    // Zeroed memory is a valid initial value for every atomic we use, but
    // construct them properly anyway so the object model is respected.
    auto* block = new (memory) SharedBlock();
    block->header.magic = kSharedMagic;
    block->header.layout_version = kLayoutVersion;
    block->header.slot_count = kMaxSlots;
    size_t n = nonce_hex.size() < kNonceLength ? nonce_hex.size() : kNonceLength;
    std::memcpy(block->header.nonce, nonce_hex.data(), n);
    block->header.nonce[n] = '\0';
    return SharedState(block);
}

SharedState SharedState::adopt(void* memory, size_t length) {
    if (memory == nullptr || length < bytes_needed()) return SharedState(nullptr);
    auto* block = static_cast<SharedBlock*>(memory);
    if (block->header.magic != kSharedMagic || block->header.layout_version != kLayoutVersion ||
        block->header.slot_count != kMaxSlots) {
        return SharedState(nullptr);
    }
    return SharedState(block);
}

int SharedState::claim(std::string_view key, uint32_t generation, ReplicaState initial_state) {
    if (!block_ || key.empty() || key.size() >= kSlotKeyLength) return -1;
    int fresh = -1;
    int oldest_retired = -1;
    for (size_t i = 0; i < kMaxSlots; ++i) {
        ReplicaSlot& s = block_->slots[i];
        if (s.in_use.load() && key == std::string_view(s.key)) {
            s.claimed_generation.store(generation);
            return static_cast<int>(i);
        }
        if (!s.in_use.load()) {
            if (s.key[0] == '\0') {
                if (fresh < 0) fresh = static_cast<int>(i);
            } else if (oldest_retired < 0 ||
                       s.claimed_generation.load() <
                           block_->slots[oldest_retired].claimed_generation.load()) {
                oldest_retired = static_cast<int>(i);
            }
        }
    }
    int chosen = fresh >= 0 ? fresh : oldest_retired;
    if (chosen < 0) return -1;
    ReplicaSlot& s = block_->slots[chosen];
    std::memset(s.key, 0, sizeof s.key);
    std::memcpy(s.key, key.data(), key.size());
    s.state.store(static_cast<uint32_t>(initial_state));
    s.in_flight.store(0);
    s.requests.store(0);
    s.failures.store(0);
    s.restarts.store(0);
    s.last_pick.store(0);
    s.retry_at_us.store(0);
    s.pid.store(0);
    s.restart_requested.store(0);
    s.check_latency_us.store(-1);
    write_slot_release(s, "");
    s.claimed_generation.store(generation);
    s.in_use.store(1);
    return chosen;
}

void SharedState::retire_unclaimed(uint32_t generation) {
    if (!block_) return;
    for (auto& s : block_->slots) {
        if (s.in_use.load() && s.claimed_generation.load() != generation) s.in_use.store(0);
    }
}

int SharedState::find_release(std::string_view symlink_path) const {
    if (!block_ || symlink_path.empty()) return -1;
    for (size_t i = 0; i < kMaxReleaseSlots; ++i) {
        const ReleaseSlot& r = block_->releases[i];
        if (r.in_use.load() && symlink_path == std::string_view(r.key)) return static_cast<int>(i);
    }
    return -1;
}

int SharedState::claim_release(std::string_view symlink_path) {
    if (!block_ || symlink_path.empty() || symlink_path.size() >= kSlotKeyLength) return -1;
    if (int found = find_release(symlink_path); found >= 0) return found;
    for (size_t i = 0; i < kMaxReleaseSlots; ++i) {
        ReleaseSlot& r = block_->releases[i];
        if (r.in_use.load()) continue;
        std::memset(r.key, 0, sizeof r.key);
        std::memcpy(r.key, symlink_path.data(), symlink_path.size());
        r.error_logged_us.store(0);
        r.failed_release_hash.store(0);
        r.prepare_requests.store(0);
        r.prepare_state.store(0);
        write_locked_string(r.prepared_seq, r.prepared, kReleaseLength, "");
        r.in_use.store(1);
        return static_cast<int>(i);
    }
    return -1;
}

void SharedState::reset_in_flight() {
    if (!block_) return;
    for (auto& s : block_->slots) s.in_flight.store(0);
}

}  // namespace fpmr
