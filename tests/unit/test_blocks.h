// The two shared blocks in ordinary memory for unit tests (operator new
// aligns for every atomic the blocks hold), laid out for the given counts.
#pragma once

#include <memory>
#include <string_view>

#include "shared_state.h"

namespace fpmr::testing {

struct TestBlocks {
    explicit TestBlocks(uint32_t slots = kMinSlotCapacity, uint32_t child_rows = kMinChildRows,
                        uint32_t releases = kMinReleaseCapacity)
        : layout(*SharedLayout::of(slots, child_rows, releases)),
          open(new unsigned char[layout.open_bytes]),
          trusted(new unsigned char[layout.trusted_bytes]) {}
    SharedLayout layout;
    std::unique_ptr<unsigned char[]> open;
    std::unique_ptr<unsigned char[]> trusted;
    // Formats both blocks (the httpd parent's first start): a writable state.
    SharedState format(std::string_view nonce = "n") {
        return SharedState::format(open.get(), layout.open_bytes, trusted.get(), layout.trusted_bytes,
                                   layout, nonce);
    }
    // A child's view of blocks formatted before: the trusted one read-only.
    SharedState reader() {
        return SharedState::adopt(open.get(), layout.open_bytes, trusted.get(), layout.trusted_bytes);
    }
};

}  // namespace fpmr::testing
