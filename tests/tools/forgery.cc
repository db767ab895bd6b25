// fpmr-forgery: what the attack tests forge, made with the module's own
// layouts and encoders so the tests follow them.
//
//   fpmr-forgery layout
//       where the fields of the two shared blocks are (byte offsets, slot
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

int print_layout() {
    auto open = std::make_unique<SharedBlock>();
    auto trusted = std::make_unique<TrustedBlock>();
    const SharedBlock& o = *open;
    const TrustedBlock& t = *trusted;
    std::printf("{\"open\": {\"size\": %zu, \"magic\": %u, \"slot0\": %ld, \"slot_stride\": %zu,\n",
                sizeof(SharedBlock), kSharedMagic, offset_of(o, o.slots[0]), sizeof(ReplicaSlot));
    std::printf("  \"in_flight\": %ld, \"restart_requested\": %ld, \"admin_drained\": %ld,\n",
                offset_of(o.slots[0], o.slots[0].in_flight), offset_of(o.slots[0], o.slots[0].restart_requested),
                offset_of(o.slots[0], o.slots[0].admin_drained));
    std::printf("  \"release0\": %ld, \"release_stride\": %zu, \"prepare_requests\": %ld,"
                " \"requested_seq\": %ld, \"requested\": %ld},\n",
                offset_of(o, o.releases[0]), sizeof(ReleaseSlot),
                offset_of(o.releases[0], o.releases[0].prepare_requests),
                offset_of(o.releases[0], o.releases[0].requested_seq),
                offset_of(o.releases[0], o.releases[0].requested));
    std::printf(" \"trusted\": {\"size\": %zu, \"magic\": %u, \"slot0\": %ld, \"slot_stride\": %zu,"
                " \"pid\": %ld, \"release_seq\": %ld, \"key\": %ld, \"in_use\": %ld,"
                " \"release0\": %ld, \"release_stride\": %zu, \"release_key\": %ld}}\n",
                sizeof(TrustedBlock), kTrustedMagic, offset_of(t, t.slots[0]), sizeof(TrustedSlot),
                offset_of(t.slots[0], t.slots[0].pid), offset_of(t.slots[0], t.slots[0].release_seq),
                offset_of(t.slots[0], t.slots[0].key), offset_of(t.slots[0], t.slots[0].in_use),
                offset_of(t, t.releases[0]), sizeof(TrustedRelease),
                offset_of(t.releases[0], t.releases[0].key));
    return 0;
}

int main(int argc, char** argv) {
    std::string what = argc > 1 ? argv[1] : "";
    if (what == "layout" && argc == 2) return print_layout();
    if (what == "plan" && argc == 6) {
        return print_plans(std::atol(argv[2]), std::atol(argv[3]), argv[4], argv[5]);
    }
    std::fprintf(stderr, "usage: fpmr-forgery layout | plan FIRST_GEN LAST_GEN SOCKET_DIR MARKER\n");
    return 2;
}
