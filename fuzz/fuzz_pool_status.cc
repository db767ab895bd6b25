// php-fpm's JSON status page (a replica's status= socket answers it): any
// bytes give figures or nothing, never a crash or an exception.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "pool_status.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto status = fpmr::parse_pool_status_json(std::string_view(reinterpret_cast<const char*>(data), size));
    if (status) {
        volatile uint64_t sum = 0;
        for (uint64_t f : status->figures) sum = sum + f;
    }
    return 0;
}
