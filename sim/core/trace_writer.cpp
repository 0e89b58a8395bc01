// Streaming JSON trace-event writer.
#include "trace_writer.hpp"

#include <fmt/format.h>

namespace clustersim {
namespace {

// Microseconds with exactly six decimals: integer picoseconds print without rounding.
std::string micros(Time t) {
    const std::int64_t ps = t.ps();
    const std::int64_t mag = ps < 0 ? -ps : ps;
    return fmt::format("{}{}.{:06d}", ps < 0 ? "-" : "", mag / 1000000, mag % 1000000);
}

}  // namespace

std::string json_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\t': out += "\\t"; break;
            case '\r': out += "\\r"; break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    out += fmt::format("\\u{:04x}", static_cast<int>(c));
                } else {
                    out += c;
                }
        }
    }
    return out;
}

TraceWriter::TraceWriter(std::ostream& out) : out_(out) {
    out_ << "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[";
}

TraceWriter::~TraceWriter() { finish(); }

void TraceWriter::begin_event() {
    out_ << (events_ == 0 ? "\n" : ",\n");
    ++events_;
}

TrackId TraceWriter::track(std::string_view process, std::string_view thread) {
    auto pit = pids_.find(process);
    if (pit == pids_.end()) {
        const int pid = static_cast<int>(pids_.size()) + 1;
        pit = pids_.emplace(std::string(process), pid).first;
        begin_event();
        out_ << fmt::format(R"({{"ph":"M","name":"process_name","pid":{},"tid":0,"args":{{"name":"{}"}}}})", pid,
                            json_escape(process));
        begin_event();
        out_ << fmt::format(R"({{"ph":"M","name":"process_sort_index","pid":{},"tid":0,"args":{{"sort_index":{}}}}})",
                            pid, pid);
    }
    const int pid = pit->second;
    const auto key = std::make_pair(pid, std::string(thread));
    auto tit = tids_.find(key);
    if (tit == tids_.end()) {
        const int tid = static_cast<int>(tids_.size()) + 1;
        tit = tids_.emplace(key, tid).first;
        begin_event();
        out_ << fmt::format(R"({{"ph":"M","name":"thread_name","pid":{},"tid":{},"args":{{"name":"{}"}}}})", pid, tid,
                            json_escape(thread));
        begin_event();
        out_ << fmt::format(R"({{"ph":"M","name":"thread_sort_index","pid":{},"tid":{},"args":{{"sort_index":{}}}}})",
                            pid, tid, tid);
    }
    return {pid, tit->second};
}

void TraceWriter::slice(TrackId track, std::string_view name, std::string_view category, Time start, Time duration,
                        const std::vector<TraceArg>& args) {
    begin_event();
    out_ << fmt::format(R"({{"ph":"X","name":"{}","cat":"{}","pid":{},"tid":{},"ts":{},"dur":{})", json_escape(name),
                        json_escape(category), track.pid, track.tid, micros(start), micros(duration));
    if (!args.empty()) {
        out_ << ",\"args\":{";
        for (std::size_t i = 0; i < args.size(); ++i) {
            const auto& a = args[i];
            out_ << (i ? "," : "") << '"' << json_escape(a.key) << "\":";
            if (a.is_number) {
                out_ << fmt::format("{}", a.number);
            } else {
                out_ << '"' << json_escape(a.text) << '"';
            }
        }
        out_ << '}';
    }
    out_ << '}';
}

void TraceWriter::instant(TrackId track, std::string_view name, Time at) {
    begin_event();
    out_ << fmt::format(R"({{"ph":"i","s":"t","name":"{}","pid":{},"tid":{},"ts":{}}})", json_escape(name), track.pid,
                        track.tid, micros(at));
}

void TraceWriter::counter(TrackId track, std::string_view name, Time at, double value) {
    begin_event();
    out_ << fmt::format(R"({{"ph":"C","name":"{}","pid":{},"ts":{},"args":{{"value":{}}}}})", json_escape(name),
                        track.pid, micros(at), value);
}

void TraceWriter::finish() {
    if (finished_) return;
    finished_ = true;
    out_ << "\n]}\n";
    out_.flush();
}

}  // namespace clustersim
