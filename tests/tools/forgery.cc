// fpmr-forgery: what the attack tests forge, made with the module's own
// layouts and encoders so the tests follow them.
//
//   fpmr-forgery layout
//       the two blocks' magic numbers and where their headers keep the
//       counts the blocks were made with, as JSON;
//   fpmr-forgery layout SLOTS CHILD_ROWS RELEASES
//       where the fields of blocks of those counts are (byte offsets, slot
//       strides), as JSON: for writing forged values into an httpd child's
//       mappings the way hostile code running in that child could;
//   fpmr-forgery plan FIRST_GEN LAST_GEN SOCKET_DIR MARKER
//       framed supervisor plans for those generations, each asking for a
//       supervised replica whose "php-fpm" command writes `id` to MARKER:
//       what a process other than the httpd parent might try to send the
//       supervisor.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "shared_state.h"
#include "supervisor_plan.h"

using namespace fpmr;

namespace {
template <class Block, class Field>
long offset_of(const Block& block, const Field& field) {
    return reinterpret_cast<const char*>(&field) - reinterpret_cast<const char*>(&block);
}
}  // namespace

int print_plans(long first, long last, const std::string& socket_dir, const std::string& marker) {
    std::string error;
    for (long generation = first; generation <= last; ++generation) {
        SupervisorPlan plan;
        plan.generation = static_cast<uint32_t>(generation);
        plan.drain_timeout_us = 1000000;
        ReplicaPlan r;
        r.vhost = "evil";
        r.request.command = {"/bin/sh", "-c", "id > " + marker};
        r.request.replica = *parse_replica({"evil", "unix:" + socket_dir + "/evil.sock"}, &error);
        r.members.push_back({5, r.request.replica.socket, std::nullopt});
        plan.replicas.push_back(r);
        std::string frame = frame_plan(plan);
        std::fwrite(frame.data(), 1, frame.size(), stdout);
    }
    return 0;
}

int print_header_layout() {
    TrustedHeader t{};
    std::printf("{\"open\": {\"magic\": %u}, \"trusted\": {\"magic\": %u, \"slot_count\": %ld,"
                " \"child_row_count\": %ld, \"release_count\": %ld}}\n",
                kSharedMagic, kTrustedMagic, offset_of(t, t.slot_count), offset_of(t, t.child_row_count),
                offset_of(t, t.release_count));
    return 0;
}

int print_layout(long slots, long child_rows, long releases) {
    std::optional<SharedLayout> l = SharedLayout::of(static_cast<uint32_t>(slots),
                                                     static_cast<uint32_t>(child_rows),
                                                     static_cast<uint32_t>(releases));
    if (slots <= 0 || child_rows <= 0 || releases <= 0 || !l) {
        std::fprintf(stderr, "fpmr-forgery: no blocks of these counts\n");
        return 2;
    }
    auto slot = std::make_unique<ReplicaSlot>();
    auto release = std::make_unique<ReleaseSlot>();
    auto trusted_slot = std::make_unique<TrustedSlot>();
    auto trusted_release = std::make_unique<TrustedRelease>();
    const ReplicaSlot& o = *slot;
    const ReleaseSlot& r = *release;
    const TrustedSlot& t = *trusted_slot;
    const TrustedRelease& tr = *trusted_release;
    std::printf("{\"open\": {\"size\": %zu, \"magic\": %u, \"slot0\": %zu, \"slot_stride\": %zu,\n",
                l->open_bytes, kSharedMagic, l->open_slots, sizeof(ReplicaSlot));
    std::printf("  \"in_flight\": %ld, \"restart_requested\": %ld, \"admin_drained\": %ld,\n",
                offset_of(o, o.in_flight), offset_of(o, o.restart_requested),
                offset_of(o, o.admin_drained));
    std::printf("  \"release0\": %zu, \"release_stride\": %zu, \"prepare_requests\": %ld,"
                " \"requested_seq\": %ld, \"requested\": %ld,\n",
                l->open_releases, sizeof(ReleaseSlot), offset_of(r, r.prepare_requests),
                offset_of(r, r.requested_seq), offset_of(r, r.requested));
    std::printf("  \"child_row0\": %zu, \"child_row_stride\": %zu},\n", l->open_child_rows,
                l->child_row_stride);
    std::printf(" \"trusted\": {\"size\": %zu, \"magic\": %u, \"slot0\": %zu, \"slot_stride\": %zu,"
                " \"pid\": %ld, \"release_seq\": %ld, \"key\": %ld, \"in_use\": %ld,"
                " \"release0\": %zu, \"release_stride\": %zu, \"release_key\": %ld}}\n",
                l->trusted_bytes, kTrustedMagic, l->trusted_slots, sizeof(TrustedSlot),
                offset_of(t, t.pid), offset_of(t, t.release_seq), offset_of(t, t.key),
                offset_of(t, t.in_use), l->trusted_releases, sizeof(TrustedRelease),
                offset_of(tr, tr.key));
    return 0;
}

int main(int argc, char** argv) {
    std::string what = argc > 1 ? argv[1] : "";
    if (what == "layout" && argc == 2) return print_header_layout();
    if (what == "layout" && argc == 5) {
        return print_layout(std::atol(argv[2]), std::atol(argv[3]), std::atol(argv[4]));
    }
    if (what == "plan" && argc == 6) {
        return print_plans(std::atol(argv[2]), std::atol(argv[3]), argv[4], argv[5]);
    }
    std::fprintf(stderr, "usage: fpmr-forgery layout [SLOTS CHILD_ROWS RELEASES] | plan FIRST_GEN LAST_GEN "
                         "SOCKET_DIR MARKER\n");
    return 2;
}
