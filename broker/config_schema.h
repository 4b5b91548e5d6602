// The configuration schema: broker/config_schema.json, compiled into the binary, is the one
// description of tandemd's config file. From it come
//   - the validation of a file (types, ranges, enums, formats, unknown keys with the nearest
//     valid key), run by parse_config before any value is read (config.cpp only converts);
//   - the range checks of the command-line options that set the same settings;
//   - docs/configuration.md (`tandemd --print-config-reference`; a unit test fails when the
//     file in the tree differs from what the schema gives).
//
// The schema is JSON Schema (draft 2020-12) restricted to the keywords this validator knows:
// type (one or a list), enum, minimum, maximum, minLength, format ("host-port",
// "password-hash", "store-id"), properties, additionalProperties (false), required, items, anyOf,
// default, description, and two annotations of ours: "x-unit" (appended to the expected
// form, e.g. "(milliseconds)") and "x-group" (the section of the reference). No Debian package
// offers a C++ JSON Schema validator, hence this one; a schema keyword it does not know is
// refused by schema_test rather than ignored.
//
// Threads: everything here is immutable after first use (function-local statics); any thread.
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace tandem::broker {

// The schema text and its parse (file order kept, so the reference follows the file).
std::string_view config_schema_text();
const nlohmann::ordered_json& config_schema();

// Top-level keys of the config file, in schema order.
const std::vector<std::string_view>& schema_keys();

// Validates a whole config document. Each error is one line:
//   SOURCE: key "threads" has bad value "two": expected an integer from 1 to 64
//   SOURCE: unknown key "sync.intervl_ms": did you mean "sync.interval_ms"?
// `failed_keys` receives the top-level keys that had an error (their values must not be read).
std::vector<std::string> check_against_schema(const nlohmann::json& doc, std::string_view source,
                                              std::set<std::string>& failed_keys);

// The expected form of top-level `key` if `value` does not fit its schema, else "".
// For the command line, whose options set the same settings.
std::string check_setting(std::string_view key, const nlohmann::json& value);

// How a value of this schema node is written, as error messages and the reference say it:
// "an integer from 1 to 64", "\"debug\", \"info\", \"warn\" or \"error\"", ...
std::string expected_form(const nlohmann::ordered_json& node);

// docs/configuration.md.
std::string render_config_reference();

// A JSON value cut to 60 characters for messages.
std::string short_json(const nlohmann::json& v);

}  // namespace tandem::broker
