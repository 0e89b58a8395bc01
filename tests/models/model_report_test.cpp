// The `clustersim model` report in text and JSON.
#include "models/model_loader.hpp"
#include "models/model_report.hpp"

#include <catch2/catch.hpp>

using namespace clustersim;

TEST_CASE("the DeepSeek-V3 report shows totals with and without MTP, active parameters and the MLA KV cache") {
    const ModelSpec m = load_model_or_throw("deepseek-v3");
    const std::string text = model_report_text(m);
    CHECK_THAT(text, Catch::Contains("671.03B"));
    CHECK_THAT(text, Catch::Contains("total with MTP"));
    CHECK_THAT(text, Catch::Contains("(512 + 64) x 61 layers x 2 B"));
    CHECK_THAT(text, Catch::Contains("3-60"));  // the 58 MoE layers in one row
    const auto j = model_report_json(m);
    CHECK(j["parameters"]["total"].get<double>() == Approx(671.03e9).epsilon(1e-4));
    CHECK(j["kv_cache"]["bytes_per_token"].get<double>() == 576.0 * 61 * 2);
    CHECK(j["layers"].size() == 61);
    CHECK(j["layers"][0]["moe"].get<bool>() == false);
    CHECK(j["layers"][3]["moe"].get<bool>() == true);
}
