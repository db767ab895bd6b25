// Command splitting, spawn plans and restart backoff for the supervisor.
#include "supervision.h"

namespace fpmr {

std::optional<std::vector<std::string>> split_command(std::string_view text, std::string* error) {
    std::vector<std::string> words;
    std::string word;
    bool in_word = false;
    size_t i = 0;
    while (i < text.size()) {
        char c = text[i];
        if (c == ' ' || c == '\t' || c == '\n') {
            if (in_word) words.push_back(word), word.clear(), in_word = false;
            ++i;
        } else if (c == '\'') {
            size_t close = text.find('\'', i + 1);
            if (close == std::string_view::npos) {
                *error = "unclosed single quote";
                return std::nullopt;
            }
            word.append(text.substr(i + 1, close - i - 1));
            in_word = true;
            i = close + 1;
        } else if (c == '"') {
            ++i;
            while (i < text.size() && text[i] != '"') {
                if (text[i] == '\\' && i + 1 < text.size() &&
                    (text[i + 1] == '"' || text[i + 1] == '\\' || text[i + 1] == '$' || text[i + 1] == '`')) {
                    ++i;
                }
                word += text[i++];
            }
            if (i >= text.size()) {
                *error = "unclosed double quote";
                return std::nullopt;
            }
            ++i;
            in_word = true;
        } else if (c == '\\' && i + 1 < text.size()) {
            word += text[i + 1];
            in_word = true;
            i += 2;
        } else {
            word += c;
            in_word = true;
            ++i;
        }
    }
    if (in_word) words.push_back(word);
    if (words.empty()) {
        *error = "is empty";
        return std::nullopt;
    }
    return words;
}

SpawnPlan plan_spawn(const SpawnRequest& request) {
    SpawnPlan plan;
    const ReplicaSpec& r = request.replica;
    plan.env = {
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "FPM_REPLICA_NAME=" + r.name,
        "FPM_REPLICA_LISTEN=" + r.socket.fpm_listen(),
        "FPM_REPLICA_STATUS_LISTEN=" + (r.status ? r.status->fpm_listen() : std::string()),
        "FPM_REPLICA_PROBE_LISTEN=" + (r.probe ? r.probe->fpm_listen() : std::string()),
        "FPM_REPLICA_RELEASE=" + request.release_dir,
    };
    if (!request.stable_path.empty()) {
        plan.argv = {request.helper_path, "spawn", "--release", request.release_dir,
                     "--stable-path", request.stable_path};
        if (!request.helper_config.empty()) {
            plan.argv.push_back("--config");
            plan.argv.push_back(request.helper_config);
        }
        plan.argv.push_back("--");
    }
    plan.argv.insert(plan.argv.end(), request.command.begin(), request.command.end());
    return plan;
}

int64_t RestartBackoff::on_exit(int64_t now_us, int64_t ran_us) {
    if (ran_us >= kWindowUs || (window_start_us_ && now_us - window_start_us_ >= kWindowUs)) {
        reset();
    }
    if (crashes_ == 0) window_start_us_ = now_us;
    ++crashes_;
    if (crashes_ >= kMaxQuickCrashes) return -1;
    int64_t delay = kFirstDelayUs;
    for (int i = 1; i < crashes_ && delay < kMaxDelayUs; ++i) delay *= 2;
    if (delay > kMaxDelayUs) delay = kMaxDelayUs;
    return now_us + delay;
}

}  // namespace fpmr
