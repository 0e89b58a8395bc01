// Diagnostics: every problem found in the input files, each with file, line, column and key path.
//
// Loading never stops at the first problem: readers record errors here and go on, and the caller
// throws InputError with all of them once the whole input has been read.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace clustersim {

struct SourceLocation {
    std::string file;
    int line = 0;    // 1-based; 0 when unknown
    int column = 0;  // 1-based; 0 when unknown
};

struct Diagnostic {
    SourceLocation where;
    std::string key_path;  // "network.links[2].bandwidth"; empty for whole-file problems
    std::string message;   // what was expected and what was found
};

// "file:line:col: key.path: message"
std::string format(const Diagnostic& d);

class Diagnostics {
public:
    void error(SourceLocation where, std::string key_path, std::string message);
    bool empty() const { return errors_.empty(); }
    std::size_t size() const { return errors_.size(); }
    const std::vector<Diagnostic>& errors() const { return errors_; }
    // Throws InputError listing every error recorded, if there is any.
    void throw_if_any() const;

private:
    std::vector<Diagnostic> errors_;
};

// A user error in the input: the CLI prints every diagnostic and exits with status 2.
class InputError : public std::runtime_error {
public:
    explicit InputError(std::vector<Diagnostic> diagnostics);
    const std::vector<Diagnostic>& diagnostics() const { return diagnostics_; }

private:
    std::vector<Diagnostic> diagnostics_;
};

// The closest candidate to `word` by edit distance, or "" if none is close enough to suggest.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace clustersim
