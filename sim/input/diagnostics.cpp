// Error collection and the "did you mean" suggestion.
#include "diagnostics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace clustersim {

std::string format(const Diagnostic& d) {
    std::string out = d.where.file;
    if (d.where.line > 0) out += fmt::format(":{}:{}", d.where.line, d.where.column);
    out += ": ";
    if (!d.key_path.empty()) out += d.key_path + ": ";
    out += d.message;
    return out;
}

void Diagnostics::error(SourceLocation where, std::string key_path, std::string message) {
    errors_.push_back({std::move(where), std::move(key_path), std::move(message)});
}

void Diagnostics::throw_if_any() const {
    if (!errors_.empty()) throw InputError(errors_);
}

namespace {
std::string summarize(const std::vector<Diagnostic>& diagnostics) {
    std::string out = fmt::format("{} problem{} in the input:", diagnostics.size(), diagnostics.size() == 1 ? "" : "s");
    for (const auto& d : diagnostics) out += "\n  " + format(d);
    return out;
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t above = row[j];
            const bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                              std::tolower(static_cast<unsigned char>(b[j - 1]));
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (same ? 0 : 1)});
            diagonal = above;
        }
    }
    return row[b.size()];
}
}  // namespace

InputError::InputError(std::vector<Diagnostic> diagnostics)
    : std::runtime_error(summarize(diagnostics)), diagnostics_(std::move(diagnostics)) {}

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
    std::string best;
    std::size_t best_distance = std::max<std::size_t>(2, word.size() / 3) + 1;
    for (const auto& c : candidates) {
        const std::size_t d = edit_distance(word, c);
        // A suggestion must keep some of the word: replacing every character is no suggestion.
        if (d >= std::max(word.size(), c.size())) continue;
        if (d < best_distance) {
            best_distance = d;
            best = c;
        }
    }
    return best;
}

}  // namespace clustersim
