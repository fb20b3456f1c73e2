// `--set path=value`: one field of a RunSpec changed from the command line,
// found by protobuf reflection so that every field in the protos is reachable
// without a hand-written flag for each.
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/config/enum_spelling.h"
#include "core/config/proto_names.h"
#include "core/config/spec_loader.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/text_format.h"

namespace pipetrain {
namespace {

namespace pb = google::protobuf;
using config_internal::DidYouMean;
using config_internal::FieldNameList;
using config_internal::FieldNames;

// Values may be quoted as in a spec file (`dtype="f64"`, `schedule="1f1b"`).
std::string Unquoted(const std::string& value) {
  if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
    return value.substr(1, value.size() - 2);
  }
  return value;
}

std::string TypeName(const pb::FieldDescriptor* field) {
  if (field->enum_type() != nullptr) return field->enum_type()->name();
  if (field->message_type() != nullptr) return field->message_type()->name();
  return field->type_name();
}

// Resolves the first path component: a RunSpec field, or a field of exactly
// one of ModelSpec and TrainConfig (the `model.`/`train.` prefix left out).
absl::StatusOr<std::vector<std::string>> QualifiedPath(const std::vector<std::string>& path,
                                                       const std::string& where) {
  const pb::Descriptor* run = RunSpec::descriptor();
  const std::string& head = path.front();
  if (run->FindFieldByName(head) != nullptr) return path;
  const bool in_model = ModelSpec::descriptor()->FindFieldByName(head) != nullptr;
  const bool in_train = TrainConfig::descriptor()->FindFieldByName(head) != nullptr;
  if (in_model && in_train) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": '", head, "' is a field of both ModelSpec and TrainConfig; write model.", head,
        " or train.", head));
  }
  if (in_model || in_train) {
    std::vector<std::string> qualified = {in_model ? "model" : "train"};
    qualified.insert(qualified.end(), path.begin(), path.end());
    return qualified;
  }
  std::vector<std::string> candidates = FieldNames(run);
  for (const std::string& n : FieldNames(ModelSpec::descriptor())) candidates.push_back(n);
  for (const std::string& n : FieldNames(TrainConfig::descriptor())) candidates.push_back(n);
  return absl::InvalidArgumentError(
      absl::StrCat(where, ": unknown field '", head, "'", DidYouMean(head, candidates),
                   "; a path starts with model. or train., or with a field of ModelSpec (",
                   FieldNameList(ModelSpec::descriptor()), ") or TrainConfig (",
                   FieldNameList(TrainConfig::descriptor()), ")"));
}

absl::Status SetValue(pb::Message* message, const pb::FieldDescriptor* field,
                      const std::string& value, const std::string& where,
                      const std::string& field_path) {
  const pb::Reflection* r = message->GetReflection();
  auto bad = [&](const std::string& expected) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", field_path, " is ", TypeName(field),
                                                   " and takes ", expected, ", not '", value, "'"));
  };
  switch (field->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT32: {
      int32_t v;
      if (!absl::SimpleAtoi(value, &v)) return bad("a whole number in [-2^31, 2^31)");
      r->SetInt32(message, field, v);
      return absl::OkStatus();
    }
    case pb::FieldDescriptor::CPPTYPE_INT64: {
      int64_t v;
      if (!absl::SimpleAtoi(value, &v)) return bad("a whole number in [-2^63, 2^63)");
      r->SetInt64(message, field, v);
      return absl::OkStatus();
    }
    case pb::FieldDescriptor::CPPTYPE_UINT32: {
      uint32_t v;
      if (!absl::SimpleAtoi(value, &v)) return bad("a whole number in [0, 2^32)");
      r->SetUInt32(message, field, v);
      return absl::OkStatus();
    }
    case pb::FieldDescriptor::CPPTYPE_UINT64: {
      uint64_t v;
      if (!absl::SimpleAtoi(value, &v)) return bad("a whole number in [0, 2^64)");
      r->SetUInt64(message, field, v);
      return absl::OkStatus();
    }
    case pb::FieldDescriptor::CPPTYPE_FLOAT: {
      float v;
      if (!absl::SimpleAtof(value, &v) || !std::isfinite(v)) return bad("a finite number");
      r->SetFloat(message, field, v);
      return absl::OkStatus();
    }
    case pb::FieldDescriptor::CPPTYPE_DOUBLE: {
      double v;
      if (!absl::SimpleAtod(value, &v) || !std::isfinite(v)) return bad("a finite number");
      r->SetDouble(message, field, v);
      return absl::OkStatus();
    }
    case pb::FieldDescriptor::CPPTYPE_BOOL: {
      bool v;
      if (!absl::SimpleAtob(value, &v)) return bad("true or false");
      r->SetBool(message, field, v);
      return absl::OkStatus();
    }
    case pb::FieldDescriptor::CPPTYPE_ENUM: {
      const pb::EnumValueDescriptor* v = FindEnumValue(field->enum_type(), Unquoted(value));
      if (v == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": '", value, "' is not a ", field->enum_type()->name(),
                         DidYouMean(value, EnumWords(field->enum_type())), "; ", field_path,
                         " takes one of: ", EnumChoices(field->enum_type())));
      }
      r->SetEnum(message, field, v);
      return absl::OkStatus();
    }
    case pb::FieldDescriptor::CPPTYPE_STRING: {
      r->SetString(message, field, Unquoted(value));
      return absl::OkStatus();
    }
    case pb::FieldDescriptor::CPPTYPE_MESSAGE:
      break;
  }
  return absl::InternalError(absl::StrCat(where, ": unhandled field type of ", field_path));
}

// A repeated scalar field from a comma-separated list ("3,6", "full,none"),
// replacing its contents; an empty value clears it.
absl::Status SetList(pb::Message* message, const pb::FieldDescriptor* field,
                     const std::string& value, const std::string& where,
                     const std::string& field_path) {
  std::unique_ptr<pb::Message> scratch(message->New());
  if (!value.empty()) {
    for (absl::string_view raw : absl::StrSplit(value, ',')) {
      std::string element(absl::StripAsciiWhitespace(raw));
      if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_STRING &&
          !(element.size() >= 2 && element.front() == '"')) {
        element = absl::StrCat("\"", element, "\"");
      }
      if (!pb::TextFormat::ParseFieldValueFromString(element, field, scratch.get())) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": '", std::string(raw),
                                                       "' is not a valid ", TypeName(field),
                                                       " for ", field_path));
      }
    }
  }
  message->GetReflection()->ClearField(message, field);
  const int n = scratch->GetReflection()->FieldSize(*scratch, field);
  for (int k = 0; k < n; ++k) {
    // Round-trip through text keeps this independent of the element type.
    std::string text;
    pb::TextFormat::PrintFieldValueToString(*scratch, field, k, &text);
    pb::TextFormat::ParseFieldValueFromString(text, field, message);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyOverride(RunSpec* spec, const std::string& assignment) {
  const std::string where = absl::StrCat("--set '", assignment, "'");
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": expected path=value, e.g. model.d_model=128 or steps=10"));
  }
  const std::string path_text(absl::StripAsciiWhitespace(assignment.substr(0, eq)));
  const std::string value(absl::StripAsciiWhitespace(assignment.substr(eq + 1)));
  const std::vector<std::string> raw_path = absl::StrSplit(path_text, '.');
  for (const std::string& component : raw_path) {
    if (component.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": the field path '", path_text,
          "' has an empty component; write dotted field names, e.g. train.adamw.beta2=0.95"));
    }
  }
  auto qualified = QualifiedPath(raw_path, where);
  if (!qualified.ok()) return qualified.status();
  const std::vector<std::string>& path = *qualified;

  pb::Message* message = spec;
  std::string done;  // the path resolved so far, for messages
  for (size_t i = 0; i < path.size(); ++i) {
    const pb::Descriptor* type = message->GetDescriptor();
    const pb::FieldDescriptor* field = type->FindFieldByName(path[i]);
    if (field == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": ", type->name(), done.empty() ? "" : " (" + done + ")",
                       " has no field '", path[i], "'", DidYouMean(path[i], FieldNames(type)),
                       "; valid fields: ", FieldNameList(type)));
    }
    done = done.empty() ? path[i] : absl::StrCat(done, ".", path[i]);
    if (field->is_repeated()) {
      if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE || i + 1 != path.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": ", done, " is a repeated field (a list of ", TypeName(field),
                         "); --set can replace lists of plain values only, so edit the spec file"));
      }
      return SetList(message, field, value, where, done);
    }
    const bool last = i + 1 == path.size();
    if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      if (last) {
        std::vector<std::string> sub;
        for (const std::string& n : FieldNames(field->message_type())) {
          sub.push_back(absl::StrCat(done, ".", n));
        }
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": ", done, " is a message (", TypeName(field),
                         "); set one of its fields: ", absl::StrJoin(sub, ", ")));
      }
      message = message->GetReflection()->MutableMessage(message, field);
      continue;
    }
    if (!last) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", done, " is a ", TypeName(field),
                                                     ", not a message, so '", path_text,
                                                     "' names nothing"));
    }
    return SetValue(message, field, value, where, done);
  }
  return absl::InternalError(absl::StrCat(where, ": empty path"));
}

}  // namespace pipetrain
