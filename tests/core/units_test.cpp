// Tests of the strong unit types, their arithmetic and the unit-string parser.
#include "sim/core/units.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <type_traits>

using namespace clustersim;
using namespace clustersim::literals;

TEST_CASE("bytes over bandwidth is a time", "[units]") {
    const Time t = 50_GB / 50_GBps;
    CHECK(t == 1_s);
    CHECK((1_MB / 400_Gbps) == 20_us);
}

TEST_CASE("bandwidth times time is bytes and work over rate is a time", "[units]") {
    CHECK((100_GBps * 2_ms).bytes() == Approx(2e8));
    CHECK((989_TFLOPS * 1_s).flops() == Approx(989e12));
    CHECK((1978_TFLOP / 989_TFLOPS) == 2_s);
    CHECK((1_GB / 1_ms).gb_per_second() == Approx(1000.0));
}

TEST_CASE("time is integer picoseconds and sums exactly", "[units]") {
    Time t;
    for (int i = 0; i < 1000; ++i) t += 1.5_ns;
    CHECK(t == 1500_ns);
    CHECK(Time::from_seconds(1e-12).ps() == 1);
    CHECK((3_us * 2) == 6_us);
    CHECK((3_us * 0.5) == 1.5_us);
    CHECK((7_us / 2) == 3.5_us);
    CHECK((6_us / 3_us) == Approx(2.0));
}

TEST_CASE("a time past 2^63 picoseconds either way, or not a number, is refused instead of wrapping", "[units]") {
    // 2^63 ps is 9.223e6 s, about 106 days.
    CHECK(Time::from_seconds(9.2e6).ps() == 9'200'000'000'000'000'000);
    CHECK(Time::from_seconds(-9.2e6).ps() == -9'200'000'000'000'000'000);
    CHECK_THROWS_AS(Time::from_seconds(9.3e6), TimeOverflow);
    CHECK_THROWS_AS(Time::from_seconds(-9.3e6), TimeOverflow);
    CHECK_THROWS_AS(Time::from_seconds(std::nan("")), TimeOverflow);
    CHECK_THROWS_WITH(Time::from_us(1.5e17), Catch::Contains("a time of 1.5e+11 s is outside the simulator's clock"));
    CHECK_THROWS_AS(Bytes(1e18) / 1_GBps, TimeOverflow);  // 1e9 s
    CHECK_THROWS_AS(parse_time("-3000h"), UnitError);
}

TEST_CASE("Time arithmetic past 2^63 ps throws instead of wrapping", "[units]") {
    CHECK_THROWS_WITH(Bytes(1e20) / 1_GBps, Catch::Contains("1e+11 s") && Catch::Contains("about 106 days"));
    CHECK_THROWS_AS(Time::max() + 1_ps, TimeOverflow);
    CHECK_THROWS_AS(Time::zero() - Time::max() - 2_ps, TimeOverflow);
    CHECK_THROWS_AS(Time::from_seconds(5e6) * 2, TimeOverflow);
    Time t = Time::from_seconds(5e6);
    CHECK_THROWS_AS(t += Time::from_seconds(5e6), TimeOverflow);
    CHECK((Time::max() - 1_ps) + 1_ps == Time::max());
}

TEST_CASE("quantities of different kinds cannot be added", "[units]") {
    STATIC_REQUIRE(std::is_invocable_v<std::plus<>, Bytes, Bytes>);
    STATIC_REQUIRE_FALSE(std::is_invocable_v<std::plus<>, Bytes, Bandwidth>);
    STATIC_REQUIRE_FALSE(std::is_invocable_v<std::plus<>, Time, Bytes>);
    STATIC_REQUIRE_FALSE(std::is_invocable_v<std::plus<>, Flops, FlopRate>);
    STATIC_REQUIRE_FALSE(std::is_convertible_v<double, Bytes>);
    STATIC_REQUIRE_FALSE(std::is_convertible_v<std::int64_t, Time>);
}

TEST_CASE("unit strings parse to the quantities they name", "[units][parse]") {
    CHECK(parse_bandwidth("400Gbps").bytes_per_second() == Approx(50e9));
    CHECK(parse_bandwidth("400 Gb/s").bytes_per_second() == Approx(50e9));
    CHECK(parse_bandwidth("50GB/s").bytes_per_second() == Approx(50e9));
    CHECK(parse_bandwidth("50GBps").bytes_per_second() == Approx(50e9));
    CHECK(parse_bandwidth("1GiB/s").bytes_per_second() == Approx(1073741824.0));
    CHECK(parse_time("1.5us") == 1.5_us);
    CHECK(parse_time("20 ms") == 20_ms);
    CHECK(parse_time("2min") == 120_s);
    CHECK(parse_time("0s") == Time::zero());
    CHECK(parse_bytes("80GiB").bytes() == Approx(80.0 * 1024 * 1024 * 1024));
    CHECK(parse_bytes("4KB").bytes() == Approx(4000.0));
    CHECK(parse_bytes("1e3B").bytes() == Approx(1000.0));
    CHECK(parse_flop_rate("989TFLOPS").flops_per_second() == Approx(989e12));
    CHECK(parse_flop_rate("1.979PFLOP/s").flops_per_second() == Approx(1.979e15));
    CHECK(parse_flops("2.5TFLOP").flops() == Approx(2.5e12));
    CHECK(parse_flops("37GFLOPs").flops() == Approx(37e9));
}

TEST_CASE("a number without a unit is rejected with an example of what is expected", "[units][parse]") {
    CHECK_THROWS_WITH(parse_bandwidth("400"), Catch::Contains("no unit") && Catch::Contains("400Gbps"));
    CHECK_THROWS_WITH(parse_time("1.5"), Catch::Contains("no unit"));
    CHECK_THROWS_WITH(parse_bytes("80"), Catch::Contains("no unit"));
}

TEST_CASE("bad unit strings say what was expected", "[units][parse]") {
    CHECK_THROWS_WITH(parse_time("3 fortnights"), Catch::Contains("unknown time unit \"fortnights\""));
    CHECK_THROWS_WITH(parse_bytes("80Gb"), Catch::Contains("bits") && Catch::Contains("80GB"));
    CHECK_THROWS_WITH(parse_bandwidth("50GB"), Catch::Contains("unknown bandwidth unit"));
    CHECK_THROWS_WITH(parse_flops("5TFLOPS"), Catch::Contains("is a rate"));
    CHECK_THROWS_WITH(parse_time("-1us"), Catch::Contains("not negative"));
    CHECK_THROWS_WITH(parse_time("fast"), Catch::Contains("a number with a unit"));
    CHECK_THROWS_AS(parse_flop_rate("989XFLOPS"), UnitError);
}

TEST_CASE("printed quantities parse back to the same value", "[units][parse]") {
    for (Time t : {1.5_us, 20_ms, 3_s, 7_ps, 1234567_ps, Time::zero()}) CHECK(parse_time(to_string(t)) == t);
    CHECK(to_string(1.5_us) == "1.5us");
    CHECK(to_string(80_GiB) == "80GiB");
    CHECK(parse_bytes(to_string(Bytes(123456789.0))).bytes() == Approx(123456789.0));
    CHECK(parse_bandwidth(to_string(400_Gbps)).bytes_per_second() == Approx(50e9));
    CHECK(parse_flop_rate(to_string(989_TFLOPS)).tflops() == Approx(989.0));
}
