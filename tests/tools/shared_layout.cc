// fpmr-shared-layout: prints where the fields of the two shared blocks are
// (byte offsets, slot strides), as JSON, for the integration test that
// writes forged values into an httpd child's mappings the way hostile code
// running in that child could.
#include <cstdio>
#include <memory>

#include "shared_state.h"

using namespace fpmr;

namespace {
template <class Block, class Field>
long offset_of(const Block& block, const Field& field) {
    return reinterpret_cast<const char*>(&field) - reinterpret_cast<const char*>(&block);
}
}  // namespace

int main() {
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
