// How the fuzz targets turn libFuzzer's bytes into the arguments of a
// parser, kept readable so seed files are plain text an operator would
// recognise: one word per line for argument vectors, and a line "%%" between
// the parts of a function that takes several texts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace fpmr::fuzz {

inline std::string_view as_text(const uint8_t* data, size_t size) {
    return std::string_view(reinterpret_cast<const char*>(data), size);
}

// "a\nb\n" -> {"a", "b"}; a final line without '\n' counts, an empty input is
// no word. Empty lines are kept: an empty argument is input too.
inline std::vector<std::string> split_lines(std::string_view text) {
    std::vector<std::string> out;
    while (!text.empty()) {
        size_t eol = text.find('\n');
        out.emplace_back(text.substr(0, eol));
        text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    }
    return out;
}

// The first `count` parts separated by "\n%%\n"; missing ones are empty.
inline std::vector<std::string> split_parts(std::string_view text, size_t count) {
    constexpr std::string_view kSeparator = "\n%%\n";
    std::vector<std::string> out;
    while (out.size() + 1 < count) {
        size_t at = text.find(kSeparator);
        if (at == std::string_view::npos) break;
        out.emplace_back(text.substr(0, at));
        text.remove_prefix(at + kSeparator.size());
    }
    out.emplace_back(text);
    out.resize(count);
    return out;
}

// A property of the parser's result that does not hold: a finding, reported
// like a crash so libFuzzer saves the input.
[[noreturn]] inline void violated(const char* what) {
    std::fprintf(stderr, "fuzz property violated: %s\n", what);
    std::abort();
}

}  // namespace fpmr::fuzz
