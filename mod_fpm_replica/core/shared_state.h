// The layout of the state every httpd child process and thread shares: one
// memory block (created by the httpd parent, inherited across fork and kept
// across graceful restarts) holding a header and a fixed array of replica
// slots. Everything in it is plain data and lock-free atomics: no pointers,
// no vtables, because each process maps it at its own address and the module
// code that wrote it may have been unloaded and reloaded since.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace fpmr {

// What a replica is doing, as the status document names it. Stored in a slot;
// the numeric values are part of the shared layout (bump kLayoutVersion when
// they change).
enum class ReplicaState : uint32_t {
    Starting = 0,
    Ready = 1,
    Draining = 2,
    Stopped = 3,
    Failed = 4,
};
const char* state_name(ReplicaState state);

constexpr uint32_t kSharedMagic = 0x52504d46;  // "FMPR" little-endian
constexpr uint32_t kLayoutVersion = 7;
constexpr size_t kMaxSlots = 256;
constexpr size_t kMaxReleaseSlots = 64;
constexpr size_t kSlotKeyLength = 256;
constexpr size_t kNonceLength = 32;  // hex characters
constexpr size_t kReleaseLength = 512;

// One replica's shared figures. A slot is bound to a replica by its key
// ("vhost|name"), so drain state and counters survive a graceful restart that
// keeps the replica, and a new replica never inherits another one's counts.
struct ReplicaSlot {
    // Written by the httpd parent only, between generations, while no child
    // of the new generation exists yet; children only read it.
    char key[kSlotKeyLength];
    std::atomic<uint32_t> in_use;
    std::atomic<uint32_t> claimed_generation;  // last generation that configured it

    std::atomic<uint32_t> state;         // ReplicaState
    std::atomic<int64_t> in_flight;      // requests handed to this replica, not yet finished
    std::atomic<uint64_t> requests;      // attempts handed to it, ever
    std::atomic<uint64_t> failures;      // attempts that ended in a backend error
    std::atomic<uint64_t> restarts;      // supervised restarts
    std::atomic<uint64_t> last_pick;     // pick sequence number: rotates ties
    std::atomic<int64_t> retry_at_us;    // refused a connection: 0 = healthy, else skip until then
    std::atomic<int32_t> pid;            // master pid when known, else 0
    std::atomic<uint32_t> restart_requested;  // bumped by the status handler's restart action
    std::atomic<int64_t> check_latency_us;    // last health check's duration; -1: none yet
    // The release this member's master serves (namespace mode): a hash the
    // finder compares lock-free, and the path for the status document,
    // written by the supervisor under a sequence lock (odd while writing).
    std::atomic<uint64_t> release_hash;
    std::atomic<uint32_t> release_seq;
    char release[kReleaseLength];
};

// 64-bit FNV-1a of a text; never 0 (0 means "none"), 0 for the empty text.
uint64_t text_hash(std::string_view text);
// The same of a release path: "" (no release) is 0.
inline uint64_t release_hash(std::string_view release_dir) { return text_hash(release_dir); }
// Sequence-locked write and read of a slot's release (one writer: the supervisor).
void write_slot_release(ReplicaSlot& slot, std::string_view release_dir);
std::string read_slot_release(const ReplicaSlot& slot);
// The same for any string behind a sequence counter (one writer at a time).
void write_locked_string(std::atomic<uint32_t>& seq, char* buffer, size_t size, std::string_view text);
std::string read_locked_string(const std::atomic<uint32_t>& seq, const char* buffer, size_t size);

// Per release symlink figures every child shares: when its failure was last
// logged, so a dangling link is logged once per interval, not once per child.
struct ReleaseSlot {
    char key[kSlotKeyLength];  // the symlink path; written by the parent only
    std::atomic<uint32_t> in_use;
    std::atomic<int64_t> error_logged_us;
    // Namespace mode: the release (hash) whose replicas could not be started;
    // requests pinned to it get 503 at once instead of waiting. 0: none.
    std::atomic<uint64_t> failed_release_hash;
    // Deploy preparation (status POST action=prepare): the release a deploy
    // tool wants one replica brought up on before it flips the symlink.
    std::atomic<uint32_t> prepare_requests;  // bumped per request
    std::atomic<uint32_t> prepare_state;     // PrepareState
    std::atomic<uint32_t> prepared_seq;      // sequence lock of `prepared`
    char prepared[kReleaseLength];
};

enum class PrepareState : uint32_t { None = 0, Starting = 1, Ready = 2, Failed = 3 };
const char* prepare_state_name(PrepareState state);

struct SharedHeader {
    uint32_t magic;
    uint32_t layout_version;
    uint32_t slot_count;
    uint32_t reserved;
    char nonce[kNonceLength + 1];         // random per httpd start; guards POST on the status handler
    std::atomic<uint64_t> pick_sequence;  // source of ReplicaSlot::last_pick
    std::atomic<uint32_t> config_generation;  // httpd's generation: bumped at every restart
};

struct SharedBlock {
    SharedHeader header;
    ReplicaSlot slots[kMaxSlots];
    ReleaseSlot releases[kMaxReleaseSlots];
};

static_assert(std::atomic<uint64_t>::is_always_lock_free, "shared counters must be lock-free");
static_assert(std::atomic<int64_t>::is_always_lock_free, "shared counters must be lock-free");
static_assert(std::atomic<uint32_t>::is_always_lock_free, "shared flags must be lock-free");

// Operations on a SharedBlock living in memory someone else allocated.
class SharedState {
public:
    static constexpr size_t bytes_needed() { return sizeof(SharedBlock); }

    // Formats fresh memory (any content) as an empty block with this nonce.
    static SharedState format(void* memory, size_t length, std::string_view nonce_hex);
    // Adopts memory formatted earlier; returns an invalid state when it is not ours.
    static SharedState adopt(void* memory, size_t length);

    bool valid() const { return block_ != nullptr; }
    SharedBlock* block() const { return block_; }
    ReplicaSlot& slot(int index) const { return block_->slots[index]; }
    std::string nonce() const { return block_->header.nonce; }

    // Binds `key` to a slot for `generation`: the slot it had before, or a
    // fresh one (never-used slots first, then the one retired longest ago).
    // A fresh slot starts in `initial_state` with zeroed counters.
    // Returns -1 when every slot is bound in this generation.
    int claim(std::string_view key, uint32_t generation, ReplicaState initial_state);
    // Retires slots nobody claimed in `generation` (replicas removed from the
    // configuration). Their counters stay until the slot is reused.
    void retire_unclaimed(uint32_t generation);
    // After a start with no httpd child alive, nothing can be in flight.
    void reset_in_flight();
    // The release slot of a symlink path, made on first use; -1 when full.
    // Release slots are never retired: there are few symlinks per instance.
    int claim_release(std::string_view symlink_path);
    // The release slot of a symlink path, or -1; never creates one (for
    // child processes: only the parent claims slots).
    int find_release(std::string_view symlink_path) const;
    ReleaseSlot& release_slot(int index) const { return block_->releases[index]; }

private:
    explicit SharedState(SharedBlock* block) : block_(block) {}
    SharedBlock* block_ = nullptr;
};

}  // namespace fpmr
