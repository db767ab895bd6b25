// The layout of the state every httpd child process and thread shares, in
// two memory blocks with two different trust levels:
//
// * the open block (SharedBlock): mapped read-write in every httpd child.
//   It holds what children count and what they ask for: in-flight counts,
//   refused-connection marks, the operator's drain, restart and prepare
//   requests. Any code running in a child (another module, a PHP extension,
//   a write to /proc/self/mem) can change any of it, so the root supervisor
//   reads it only as untrusted input: bounded, validated, never the source
//   of a pid or a path it acts on.
// * the trusted block (TrustedBlock): written only by the httpd parent and
//   the supervisor (both root); every child maps it read-only from a
//   read-only descriptor, so it cannot be made writable there. It holds
//   what root acts on and what steering must be able to believe: slot
//   keys, lifecycle, health, master pids and their start times, the release
//   each master serves, prepared releases, the nonce.
//
// Both are plain data and lock-free atomics: no pointers, no vtables,
// because each process maps them at its own address and the module code
// that wrote them may have been unloaded and reloaded since. Slot i of one
// block and slot i of the other describe the same replica member.
//
// Their size follows the configuration: each header records how many
// slots, per-child rows and release slots the blocks were made with, and
// every array sits at an offset computed from those counts (SharedLayout).
// The trusted header's counts are the ones believed, and memory is adopted
// only when its length is exactly what they give.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pool_status.h"
#include "request_figures.h"

namespace fpmr {

// What a replica member's master is doing (the supervisor's lifecycle), and
// the state the status document shows (derived: see effective_state). The
// numeric values are part of the shared layout (bump kLayoutVersion when
// they change).
enum class ReplicaState : uint32_t {
    Starting = 0,
    Ready = 1,
    Draining = 2,
    Stopped = 3,
    Failed = 4,
};
const char* state_name(ReplicaState state);

// The health checker's verdict on a member (FpmReplicaHealthCheck).
enum class HealthState : uint32_t { Unknown = 0, Passing = 1, Failing = 2 };
const char* health_name(HealthState health);

// What the supervisor last saw go wrong with a member's master, kept with a
// detail (a wait status, an HTTP status) so the status document can say
// why a replica is not ready (replica_reason.h). Cleared at each start.
enum class MasterTrouble : uint32_t {
    None = 0,
    Crashed = 1,            // exited unasked; restarted with backoff (detail: wait status)
    CrashLoop = 2,          // crashed too often within a minute: not restarted (detail: wait status)
    HealthChecks = 3,       // failed its checks in a row (detail: HTTP status, 0: no answer in time)
    ReplacementFailed = 4,  // a replacement master exited before it answered (detail: wait status)
    StartTimeout = 5,       // a new master did not answer in time
};

constexpr uint32_t kSharedMagic = 0x52504d46;   // "FMPR" little-endian
constexpr uint32_t kTrustedMagic = 0x54504d46;  // "FMPT"
constexpr uint32_t kLayoutVersion = 13;
constexpr size_t kSlotKeyLength = 256;
constexpr size_t kNonceLength = 32;  // hex characters
constexpr size_t kReleaseLength = 512;

// How many records the blocks hold is decided once, when httpd starts (not
// at a graceful restart: every child of every generation has them mapped at
// their size), from the configuration (layout_for). These bound it: below a
// minimum the blocks get the minimum anyway (room to grow costs little),
// above a maximum a configuration is refused at configtest (FPMR00164).
constexpr uint32_t kMinSlotCapacity = 256;
constexpr uint32_t kMaxSlotCapacity = 16384;  // balancer members per httpd instance
constexpr uint32_t kMinReleaseCapacity = 64;
constexpr uint32_t kMaxReleaseCapacity = 16384;  // release symlinks per httpd instance
constexpr uint32_t kMinChildRows = 64;
// Far above any ServerLimit the event and worker MPMs accept (20000); a
// child beyond the rows counts in the totals only (FPMR00161).
constexpr uint32_t kMaxChildRows = 65536;
// Both blocks together (FPMR00165 above it). The per-child rows grow with
// slots x rows, the only product that can get large.
constexpr size_t kMaxSharedBytes = size_t{256} << 20;

// One replica member's figures in the open block. Written by children.
struct ReplicaSlot {
    // Requests handed to this member, not yet finished: the sum over every
    // child's ChildRow, kept as one figure because steering reads it on
    // every pick without summing rows.
    std::atomic<int64_t> in_flight;
    std::atomic<uint64_t> requests;      // attempts handed to it, ever
    std::atomic<uint64_t> failures;      // attempts that ended in a backend error
    std::atomic<uint64_t> last_pick;     // pick sequence number: rotates ties
    std::atomic<int64_t> retry_at_us;    // refused a connection: 0 = healthy, else skip until then
    std::atomic<uint32_t> admin_drained; // the operator's drain (status handler): 1 = drained
    std::atomic<uint32_t> restart_requested;  // bumped by the status handler's restart action
    // How long its answers took, per release (request_figures.h).
    MemberReleaseDurations durations[kMemberReleaseEntries];
    // Its master's php-fpm pool figures as the last scrape read them.
    PoolStatusCache pool_status;
};

// The same member in the trusted block. Bound to a replica by its key
// ("vhost|name|socket"), so drain state and counters survive a graceful
// restart that keeps the replica, and a new replica never inherits another
// one's counts.
struct TrustedSlot {
    // Written by the httpd parent only, between generations.
    char key[kSlotKeyLength];
    std::atomic<uint32_t> in_use;
    std::atomic<uint32_t> claimed_generation;  // last generation that configured it

    // Written by the supervisor (the parent sets the first value).
    std::atomic<uint32_t> lifecycle;        // ReplicaState
    std::atomic<uint32_t> health;           // HealthState
    std::atomic<int32_t> pid;               // master pid when known, else 0
    std::atomic<uint64_t> pid_start_time;   // its start time (/proc/PID/stat field 22)
    std::atomic<uint64_t> restarts;         // supervised restarts
    std::atomic<int64_t> check_latency_us;  // last health check's duration; -1: none yet
    std::atomic<uint32_t> trouble;          // MasterTrouble
    std::atomic<int32_t> trouble_detail;
    // The last warm-up of this member's master (FpmReplicaWarmup): scripts
    // compiled and how long it took; -1: none.
    std::atomic<int64_t> warmup_scripts;
    std::atomic<int64_t> warmup_us;
    // While its warm-up requests the URL paths through httpd: the token its
    // requests carry (core/warmup_urls); zero otherwise.
    std::atomic<uint64_t> warmup_token_high;
    std::atomic<uint64_t> warmup_token_low;
    // The release this member's master serves (namespace mode): a hash the
    // finder compares lock-free, and the path for the status document,
    // under a sequence lock (odd while writing).
    std::atomic<uint64_t> release_hash;
    std::atomic<uint32_t> release_seq;
    char release[kReleaseLength];
};

// Per release symlink, open block: what children keep and ask for.
struct ReleaseSlot {
    // When the symlink's failure was last logged, so a dangling link is
    // logged once per interval, not once per child.
    std::atomic<int64_t> error_logged_us;
    // Deploy preparation (status POST action=prepare): the release a deploy
    // tool wants one replica brought up on before it flips the symlink.
    // Untrusted: the supervisor validates it before anything starts.
    std::atomic<uint32_t> prepare_requests;  // bumped per request
    std::atomic<uint32_t> requested_seq;     // sequence lock of `requested`
    char requested[kReleaseLength];
    // The releases it named recently: in flight, answers (request_figures.h).
    ReleaseFigures figures[kReleaseFigureEntries];
};

enum class PrepareState : uint32_t { None = 0, Starting = 1, Ready = 2, Failed = 3 };
const char* prepare_state_name(PrepareState state);

// Per release symlink, trusted block.
struct TrustedRelease {
    char key[kSlotKeyLength];  // the symlink path; written by the parent only
    std::atomic<uint32_t> in_use;
    // Namespace mode: the release (hash) whose replicas could not be started;
    // requests pinned to it get 503 at once instead of waiting. 0: none.
    std::atomic<uint64_t> failed_release_hash;
    // The deploy preparation the supervisor accepted (validated path) and how far it is.
    std::atomic<uint32_t> prepare_handled;  // ReleaseSlot::prepare_requests value last taken
    std::atomic<uint32_t> prepare_state;    // PrepareState
    std::atomic<uint32_t> prepared_seq;   // sequence lock of `prepared`
    char prepared[kReleaseLength];
    // The release the symlink named before its last flip, however it was
    // flipped (the supervisor watches it): what rollback goes back to.
    std::atomic<uint32_t> previous_seq;   // sequence lock of `previous`
    char previous[kReleaseLength];
};

// One httpd child's share of every member's in_flight, so that a child that
// dies mid-request (SIGKILL, the OOM killer, a crash) can have its share
// taken back out of the aggregates by the httpd parent, which learns of every
// child's exit. Keyed by pid, not by scoreboard slot: a threaded MPM can give
// a still-running child's scoreboard slot to a new child. Open block: a
// child can write any row, so the parent subtracts only what it reads,
// clamped (never below zero, never more than a row can hold).
//
// In memory a row is an array of int32 atomics, [0] the owner's pid (0:
// free; taken with a compare-and-swap), [1 + slot] the count of each
// member slot, as wide as the block has slots, then kChildReleaseCells
// pairs of release cells (request_figures.h); rows are
// SharedLayout::child_row_stride apart. This is a view of one.
struct ChildRow {
    std::atomic<int32_t>& owner_pid;
    std::atomic<int32_t>* in_flight;      // [slot_count]
    std::atomic<int32_t>* release_cells;  // [2 * kChildReleaseCells]: entry + 1, count
};

// The counts the blocks were made with are in both headers; the trusted
// header's are the ones believed (children can write the open one).
struct BlockHeader {
    uint32_t magic;
    uint32_t layout_version;
    uint32_t slot_count;
    uint32_t child_row_count;
    uint32_t release_count;
    uint32_t reserved;
};

struct SharedHeader : BlockHeader {
    std::atomic<uint64_t> pick_sequence;  // source of ReplicaSlot::last_pick
};

struct TrustedHeader : BlockHeader {
    char nonce[kNonceLength + 1];             // random per httpd start; guards POST on the status handler
    std::atomic<uint32_t> config_generation;  // httpd's generation: bumped at every restart
};

// The fixed start of each block; the arrays follow at the offsets
// SharedLayout computes from the header's counts:
//   open:    header | ReplicaSlot[slots] | ReleaseSlot[releases] | child rows[rows]
//   trusted: header | TrustedSlot[slots] | TrustedRelease[releases]
struct SharedBlock {
    SharedHeader header;
};

struct TrustedBlock {
    TrustedHeader header;
};

// Where everything is in blocks of given counts. Plain arithmetic, the same
// in every process, so nothing in the blocks has to point anywhere.
struct SharedLayout {
    uint32_t slot_count = 0;
    uint32_t child_row_count = 0;
    uint32_t release_count = 0;
    // Byte offsets from the start of the open block, and its length.
    size_t open_slots = 0;
    size_t open_releases = 0;
    size_t open_child_rows = 0;
    size_t child_row_stride = 0;  // one row: owner pid, slot_count counts, release cells; 64-byte aligned
    size_t open_bytes = 0;
    // The same for the trusted block.
    size_t trusted_slots = 0;
    size_t trusted_releases = 0;
    size_t trusted_bytes = 0;

    size_t total_bytes() const { return open_bytes + trusted_bytes; }
    bool operator==(const SharedLayout& o) const {
        return slot_count == o.slot_count && child_row_count == o.child_row_count &&
               release_count == o.release_count;
    }

    // nullopt when a count is 0 or above its maximum, or both blocks
    // together would be larger than kMaxSharedBytes.
    static std::optional<SharedLayout> of(uint32_t slots, uint32_t child_rows, uint32_t releases);
    // Both blocks' bytes for these counts, whether or not they are allowed
    // (for the message that refuses them).
    static uint64_t bytes_of(uint32_t slots, uint32_t child_rows, uint32_t releases);
};

// What a configuration asks of the blocks, counted the way post_config
// binds it (glue_state.cc).
struct SharedDemand {
    size_t members = 0;       // balancer members: one per replica, two when supervised on a unix socket
    size_t releases = 0;      // distinct release symlinks (FpmReplicaRelease)
    size_t server_limit = 0;  // the MPM's hard limit of httpd child processes (ServerLimit)
};

// Rows for a server limit: twice it plus 16, for the children of an older
// generation that a threaded MPM lets finish their requests without a
// scoreboard slot during a graceful restart (and a few more restarts in a
// row); at least kMinChildRows, at most kMaxChildRows.
uint32_t child_rows_for(size_t server_limit);
// The layout an httpd start makes for `demand`: twice the members and
// release symlinks it declares (the blocks cannot grow at a graceful
// restart, so a configuration may grow until the next stop and start), at
// least the minimums, at most the maximums; without that headroom when only
// that fits kMaxSharedBytes. nullopt when even the demand itself does not
// fit (configtest refuses it: FPMR00164, FPMR00165).
std::optional<SharedLayout> layout_for(const SharedDemand& demand);

static_assert(std::atomic<uint64_t>::is_always_lock_free, "shared counters must be lock-free");
static_assert(std::atomic<int64_t>::is_always_lock_free, "shared counters must be lock-free");
static_assert(std::atomic<uint32_t>::is_always_lock_free, "shared flags must be lock-free");
static_assert(std::atomic<int32_t>::is_always_lock_free, "shared counters must be lock-free");

// 64-bit FNV-1a of a text; never 0 (0 means "none"), 0 for the empty text.
uint64_t text_hash(std::string_view text);
// The same of a release path: "" (no release) is 0.
inline uint64_t release_hash(std::string_view release_dir) { return text_hash(release_dir); }

// A string behind a sequence counter (odd while written). A writer takes the
// counter from even to odd with a compare-and-swap, so two writers never
// interleave; one that cannot take it within a bounded number of tries (a
// writer died mid-write, or is hostile) gives up and returns false. A
// reader retries a bounded number of times and returns nullopt when it never
// saw a stable, even counter: it never spins forever on memory someone else
// can write.
bool write_locked_string(std::atomic<uint32_t>& seq, char* buffer, size_t size, std::string_view text);
std::optional<std::string> read_locked_string(const std::atomic<uint32_t>& seq, const char* buffer,
                                              size_t size);
// Ends a write that never finished: the counter was odd at `stuck_value`
// and still is. Only the one reader that owns the string's meaning (the
// supervisor, for requests written by children) calls it, after a delay.
bool clear_stuck_string(std::atomic<uint32_t>& seq, uint32_t stuck_value, char* buffer, size_t size);

// The supervisor's writes of a member's release (path, then hash).
bool write_slot_release(TrustedSlot& slot, std::string_view release_dir);
std::optional<std::string> read_slot_release(const TrustedSlot& slot);

// The state the status document shows and steering obeys, derived from the
// parts that each have one writer: the supervisor's lifecycle, its health
// checks, the operator's drain, and a connection refused recently.
ReplicaState effective_state(ReplicaState lifecycle, HealthState health, bool admin_drained,
                             int64_t retry_at_us);

// Operations on the two blocks living in memory someone else allocated. A
// state made by adopt() reads the trusted block only; writer() adds the
// read-write mapping of the same block (httpd parent and supervisor).
// Indices passed to the accessors are below the layout's counts (claims
// hand out only those; the supervisor's plans are checked against them).
class SharedState {
public:
    SharedState() = default;  // invalid

    // Formats fresh memory (any content) as empty blocks of `layout` with
    // this nonce; each length must be the layout's.
    static SharedState format(void* open, size_t open_length, void* trusted, size_t trusted_length,
                              const SharedLayout& layout, std::string_view nonce_hex);
    // Adopts memory formatted earlier; returns an invalid state when it is
    // not ours: another magic or layout version, or a length other than the
    // one the trusted header's counts give.
    static SharedState adopt(void* open, size_t open_length, const void* trusted,
                             size_t trusted_length);
    // The same state, able to write the trusted block through `trusted_rw`
    // (another mapping of the same memory); invalid when it is not ours.
    SharedState writer(void* trusted_rw, size_t length) const;

    bool valid() const { return open_ != nullptr && trusted_ != nullptr; }
    bool writable() const { return trusted_rw_ != nullptr; }
    const SharedLayout& layout() const { return layout_; }
    SharedBlock* block() const { return reinterpret_cast<SharedBlock*>(open_); }
    const TrustedBlock* trusted_block() const { return reinterpret_cast<const TrustedBlock*>(trusted_); }
    ReplicaSlot& slot(int index) const { return element<ReplicaSlot>(open_, layout_.open_slots, index); }
    const TrustedSlot& trusted(int index) const {
        return element<const TrustedSlot>(trusted_, layout_.trusted_slots, index);
    }
    TrustedSlot& trusted_rw(int index) const {
        return element<TrustedSlot>(trusted_rw_, layout_.trusted_slots, index);
    }
    ChildRow child_row(int index) const {
        auto* cells = reinterpret_cast<std::atomic<int32_t>*>(
            open_ + layout_.open_child_rows + static_cast<size_t>(index) * layout_.child_row_stride);
        return ChildRow{cells[0], cells + 1, cells + 1 + layout_.slot_count};
    }
    // The member's state for steering (effective_state without the
    // refused-connection mark, which selection weighs on its own).
    ReplicaState state_of(int index) const;
    std::string nonce() const { return trusted_block()->header.nonce; }
    uint32_t config_generation() const { return trusted_block()->header.config_generation.load(); }
    void set_config_generation(uint32_t generation) const {
        reinterpret_cast<TrustedBlock*>(trusted_rw_)->header.config_generation.store(generation);
    }

    // Binds `key` to a slot for `generation` (writer only): the slot it had
    // before, or a fresh one (never-used slots first, then the one retired
    // longest ago). A fresh slot starts in `initial_state` with zeroed
    // counters. Returns -1 when every slot is bound in this generation.
    int claim(std::string_view key, uint32_t generation, ReplicaState initial_state) const;
    struct Claim {
        std::string key;
        ReplicaState initial_state;
    };
    // claim() for every key, or for none: the members of one replica (its
    // primary and alternate) get slots together or are left out together.
    // nullopt when not all of them fit (or a key is empty or too long), and
    // then nothing changed.
    std::optional<std::vector<int>> claim_together(const std::vector<Claim>& claims,
                                                   uint32_t generation) const;
    // Slots a new key could take now (bound in no generation still running).
    size_t free_slots() const;
    // How full the blocks are, for the status document: what an operator
    // (and the soak test) watches for leaks and for room to grow.
    struct Usage {
        uint32_t members_used = 0, members = 0;        // replica member slots
        uint32_t releases_used = 0, releases = 0;      // release symlink slots
        uint32_t child_rows_used = 0, child_rows = 0;  // httpd children's in-flight rows
    };
    Usage usage() const;
    // Retires slots nobody claimed in `generation` (replicas removed from the
    // configuration). Their counters stay until the slot is reused.
    void retire_unclaimed(uint32_t generation) const;
    // After a start with no httpd child alive, nothing can be in flight:
    // zeroes every aggregate and frees every child row.
    void reset_in_flight() const;

    // In-flight accounting of one attempt, in the child that runs it, with
    // the row claim_child_row gave it (-1: none, only the aggregate counts).
    // The aggregate goes up before the row and comes down after it, so a
    // child killed between the two leaves the aggregate one too high (a
    // drain that waits, bounded by the drain timeout), never too low (a
    // master stopped under a request).
    void begin_attempt(int slot_index, int child_row_index) const {
        slot(slot_index).in_flight.fetch_add(1);
        if (child_row_index >= 0) {
            child_row(child_row_index).in_flight[slot_index].fetch_add(1, std::memory_order_relaxed);
        }
    }
    void end_attempt(int slot_index, int child_row_index) const {
        if (child_row_index >= 0) {
            child_row(child_row_index).in_flight[slot_index].fetch_sub(1, std::memory_order_relaxed);
        }
        slot(slot_index).in_flight.fetch_sub(1);
    }
    // A free row for the child `pid`, zeroed (whatever a free row held is
    // nobody's); -1 when every row is taken or pid is not a pid.
    int claim_child_row(int32_t pid) const;
    struct Released {
        int rows = 0;          // rows that named the pid
        int64_t requests = 0;  // in-flight counts taken out of the aggregates
        bool complete = true;  // false: an aggregate kept changing under us (forged memory)
    };
    // The httpd parent, when child `pid` has exited: takes every row naming
    // it out of the aggregates (each count clamped to 0..INT32_MAX, each
    // aggregate kept at 0 or above) and frees the row, zeroed first so the
    // next child starts clean.
    Released release_child(int32_t pid) const;
    // The same for every row whose owner `alive` says is gone (the parent,
    // at a restart: exits it may not have been told of).
    Released release_gone_children(const std::function<bool(int32_t pid)>& alive) const;
    // Writes the open block's header again (writer only): children can
    // overwrite it; it only helps a reader of a memory dump find the block.
    void stamp_open_header() const;
    // The release slot of a symlink path, made on first use (writer only); -1 when full.
    // Release slots are never retired: there are few symlinks per instance.
    int claim_release(std::string_view symlink_path) const;
    // The release slot of a symlink path, or -1; never creates one.
    int find_release(std::string_view symlink_path) const;
    ReleaseSlot& release_slot(int index) const {
        return element<ReleaseSlot>(open_, layout_.open_releases, index);
    }
    // Entry `entry` of every release slot's figures taken as one array
    // (release slot entry / kReleaseFigureEntries): the number a child row's
    // release cell holds. Below release_count * kReleaseFigureEntries.
    ReleaseFigures& release_figures(int entry) const {
        return release_slot(entry / static_cast<int>(kReleaseFigureEntries))
            .figures[entry % static_cast<int>(kReleaseFigureEntries)];
    }
    const TrustedRelease& trusted_release(int index) const {
        return element<const TrustedRelease>(trusted_, layout_.trusted_releases, index);
    }
    TrustedRelease& trusted_release_rw(int index) const {
        return element<TrustedRelease>(trusted_rw_, layout_.trusted_releases, index);
    }

private:
    // Element `index` of the array of T at `offset` in a block.
    template <class T, class Byte>
    static T& element(Byte* block, size_t offset, int index) {
        return reinterpret_cast<T*>(block + offset)[index];
    }
    SharedState(char* open, const char* trusted, char* trusted_rw, const SharedLayout& layout)
        : open_(open), trusted_(trusted), trusted_rw_(trusted_rw), layout_(layout) {}
    void bind_slot(int index, std::string_view key, uint32_t generation,
                   ReplicaState initial_state) const;
    void release_row(const ChildRow& row, Released& out) const;
    char* open_ = nullptr;
    const char* trusted_ = nullptr;
    char* trusted_rw_ = nullptr;
    SharedLayout layout_;
};

}  // namespace fpmr
