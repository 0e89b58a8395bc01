// Tests of the streaming Chrome/Perfetto trace writer.
#include "sim/core/trace_writer.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <sstream>

using namespace clustersim;
using namespace clustersim::literals;

TEST_CASE("a trace is valid JSON with named tracks and exact microsecond timestamps", "[trace]") {
    std::ostringstream out;
    TrackId comm;
    {
        TraceWriter trace(out);
        const TrackId compute = trace.track("gpu0", "compute");
        comm = trace.track("gpu0", "comm \"ib\"");
        CHECK(trace.track("gpu0", "compute").tid == compute.tid);
        trace.slice(compute, "gemm", "kernel", 1.5_us, 2_ps, {{"flops", 1e9}, {"shape", "4096x7168"}});
        trace.instant(comm, "send", 3_us);
        trace.counter(comm, "link util", 4_us, 0.5);
    }
    const auto doc = nlohmann::json::parse(out.str());
    const auto& events = doc.at("traceEvents");
    int slices = 0;
    for (const auto& e : events) {
        if (e.at("ph") == "X") {
            ++slices;
            CHECK(e.at("ts").get<double>() == Approx(1.5));
            CHECK(e.at("dur").get<double>() == Approx(0.000002));
            CHECK(e.at("args").at("shape") == "4096x7168");
        }
        if (e.at("ph") == "M" && e.at("name") == "thread_name" && e.at("tid") == comm.tid) {
            CHECK(e.at("args").at("name") == "comm \"ib\"");
        }
    }
    CHECK(slices == 1);
}
