// TraceWriter: streams a Chrome/Perfetto trace (JSON trace-event format) while the simulation runs.
//
// Events go to the stream as they happen, so a long run never holds its trace in memory. The file
// opens in ui.perfetto.dev and chrome://tracing. Processes and threads there are our tracks: a GPU
// is a process, its compute and communication streams are threads, a network link is a counter.
// Timestamps are written in microseconds with six decimals, which is exact for integer picoseconds.
#pragma once

#include "units.hpp"

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace clustersim {

struct TrackId {
    int pid = 0;
    int tid = 0;
};

// A numeric or text argument shown in the trace viewer's detail pane.
struct TraceArg {
    std::string key;
    std::string text;    // used when is_number is false
    double number = 0;   // used when is_number is true
    bool is_number = true;
    TraceArg(std::string k, double v) : key(std::move(k)), number(v) {}
    TraceArg(std::string k, std::string v) : key(std::move(k)), text(std::move(v)), is_number(false) {}
};

class TraceWriter {
public:
    explicit TraceWriter(std::ostream& out);
    ~TraceWriter();
    TraceWriter(const TraceWriter&) = delete;
    TraceWriter& operator=(const TraceWriter&) = delete;

    // The track for (process, thread), named in the viewer; created on first use.
    TrackId track(std::string_view process, std::string_view thread);
    // A slice from `start` lasting `duration` ("complete" event).
    void slice(TrackId track, std::string_view name, std::string_view category, Time start, Time duration,
               const std::vector<TraceArg>& args = {});
    // A point in time.
    void instant(TrackId track, std::string_view name, Time at);
    // A counter value on the process's counter track `name` from time `at` on.
    void counter(TrackId track, std::string_view name, Time at, double value);
    // Closes the JSON document; called by the destructor if not called before.
    void finish();

    std::uint64_t events_written() const { return events_; }

private:
    void begin_event();
    std::ostream& out_;
    std::map<std::string, int, std::less<>> pids_;
    std::map<std::pair<int, std::string>, int, std::less<>> tids_;
    std::uint64_t events_ = 0;
    bool finished_ = false;
};

// Escapes a string for a JSON string literal (without the quotes).
std::string json_escape(std::string_view s);

}  // namespace clustersim
