// Reading expert load tables with fast-cpp-csv-parser; see expert_load_table.hpp.
#include "sim/moe/expert_load_table.hpp"

#include <libfccp/csv.h>

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <map>
#include <stdexcept>
#include <utility>
#include <vector>

namespace clustersim {
namespace {

using Reader = io::CSVReader<3, io::trim_chars<' ', '\t'>, io::no_quote_escape<','>, io::throw_on_overflow,
                             io::single_and_empty_line_comment<'#'>>;

// Larger indices are surely typos, and would make the dense table huge.
constexpr long kMaxIndex = 1 << 20;

// Parses a non-negative index; returns an error message or "".
std::string parse_index(const std::string& text, const char* column, long& out) {
    const char* end = text.data() + text.size();
    auto [p, ec] = std::from_chars(text.data(), end, out);
    if (text.empty() || ec != std::errc() || p != end || out < 0)
        return fmt::format("column {}: expected a non-negative integer; found \"{}\"", column, text);
    if (out >= kMaxIndex) return fmt::format("column {}: {} is implausibly large (limit {})", column, out, kMaxIndex);
    return {};
}

std::string parse_load(const std::string& text, double& out) {
    const char* end = text.data() + text.size();
    auto [p, ec] = std::from_chars(text.data(), end, out);
    if (text.empty() || ec != std::errc() || p != end || !std::isfinite(out) || out < 0)
        return fmt::format("column load: expected a finite non-negative number; found \"{}\"", text);
    return {};
}

struct Entry {
    double load;
    int line;
};

}  // namespace

ExpertLoadMatrix read_expert_load_table(const std::string& path) {
    std::vector<std::string> errors;
    auto at = [&](int line, const std::string& message) {
        errors.push_back(fmt::format("{}:{}: {}", path, line, message));
    };
    auto fail = [&]() {
        std::string joined = "expert load table: ";
        for (std::size_t i = 0; i < errors.size(); ++i) joined += (i ? "\n" : "") + errors[i];
        throw std::runtime_error(joined);
    };

    if (!std::ifstream(path)) {
        errors.push_back(path + ": cannot open the file (does it exist, and is it readable?)");
        fail();
    }
    std::map<std::pair<long, long>, Entry> rows;
    long max_layer = -1, max_expert = -1;
    try {
        Reader in(path);
        try {
            in.read_header(io::ignore_no_column, "layer", "expert", "load");
        } catch (const io::error::base& e) {
            at(static_cast<int>(in.get_file_line()),
               fmt::format("expected the header \"layer,expert,load\" ({})", e.what()));
            fail();
        }
        while (true) {
            std::string layer_text, expert_text, load_text;
            bool got = false;
            try {
                got = in.read_row(layer_text, expert_text, load_text);
            } catch (const io::error::too_few_columns&) {
                at(static_cast<int>(in.get_file_line()), "too few columns; expected layer, expert, load");
                continue;
            } catch (const io::error::too_many_columns&) {
                at(static_cast<int>(in.get_file_line()), "too many columns; expected layer, expert, load");
                continue;
            } catch (const io::error::base& e) {
                at(static_cast<int>(in.get_file_line()), fmt::format("malformed row: {}", e.what()));
                continue;
            }
            if (!got) break;
            const int line = static_cast<int>(in.get_file_line());
            long layer = 0, expert = 0;
            double load = 0;
            std::string problem = parse_index(layer_text, "layer", layer);
            if (problem.empty()) problem = parse_index(expert_text, "expert", expert);
            if (problem.empty()) problem = parse_load(load_text, load);
            if (!problem.empty()) {
                at(line, problem);
                continue;
            }
            const auto [it, fresh] = rows.try_emplace({layer, expert}, Entry{load, line});
            if (!fresh) {
                at(line,
                   fmt::format("layer {} expert {} already has a load (line {})", layer, expert, it->second.line));
                continue;
            }
            max_layer = std::max(max_layer, layer);
            max_expert = std::max(max_expert, expert);
        }
    } catch (const io::error::base& e) {
        errors.push_back(fmt::format("{}: {}", path, e.what()));
    }
    if (!errors.empty()) fail();
    if (rows.empty()) {
        errors.push_back(path + ": the table has no rows");
        fail();
    }

    ExpertLoadMatrix loads(static_cast<std::size_t>(max_layer + 1),
                           std::vector<double>(static_cast<std::size_t>(max_expert + 1), 0.0));
    std::size_t missing = 0;
    for (long l = 0; l <= max_layer; ++l)
        for (long e = 0; e <= max_expert; ++e) {
            const auto it = rows.find({l, e});
            if (it != rows.end()) {
                loads[static_cast<std::size_t>(l)][static_cast<std::size_t>(e)] = it->second.load;
            } else if (++missing <= 10) {
                errors.push_back(
                    fmt::format("{}: layer {} has no row for expert {} (the table has layers 0-{} and "
                                "experts 0-{})",
                                path, l, e, max_layer, max_expert));
            }
        }
    if (missing > 10) errors.push_back(fmt::format("{}: and {} more missing rows", path, missing - 10));
    if (!errors.empty()) fail();
    return loads;
}

}  // namespace clustersim
