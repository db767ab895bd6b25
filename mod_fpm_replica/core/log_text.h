// How core code logs: a message tag, a level and the text, handed to a sink
// the glue bridges to ap_log_error (as mod_md's engine logs through
// md_log_set), so core stays free of httpd types.
#pragma once

#include <cstdarg>
#include <string>

// Our own message tags ("FPMR00001: "), allocated from ../next-number; each
// tag is used at one call site. httpd reserves the AH prefix for its own
// modules.
#define FPMRNO(n) "FPMR" #n ": "

namespace fpmr {

enum class LogLevel { Debug, Info, Notice, Warning, Error, Critical };

class LogSink {
public:
    virtual ~LogSink() = default;
    virtual void write(LogLevel level, const std::string& message) = 0;
};

// printf into a std::string.
std::string format_text(const char* format, ...) __attribute__((format(printf, 1, 2)));

}  // namespace fpmr
