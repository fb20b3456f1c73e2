// train.layer_stats_interval: per-layer gradient norms, relative updates and
// residual-stream RMS in metrics.jsonl, at the interval and not between; the
// same per-layer gradient norms under a 2-stage pipeline; training unchanged
// (the same final digest with the statistics on).
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/run_binary.h"

namespace pipetrain {
namespace {

using testing::RunPipetrain;

// 4+4 layers with dropout, 2 micro-batches: the pipeline case splits layers,
// the embedding and the boundary.
const char kBase[] =
    "train --spec configs/tiny.pbtxt --steps 6 --set encoder_layers=4 --set decoder_layers=4 "
    "--set residual_dropout=0.1 --set microbatches=2 --set log_interval=1 ";

std::string Launcher(int ranks) {
  return std::string("env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 ") +
         "OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive " + PIPETRAIN_MPIRUN + " " +
         std::to_string(ranks) + " ";
}

struct Record {
  std::vector<std::string> layers;
  std::vector<double> grad_norm, update_ratio, residual_rms;  // NaN for null
};

// The JSON array after `"key":[` in `line` (numbers or null, or strings).
std::vector<std::string> ArrayItems(const std::string& line, const std::string& key) {
  std::vector<std::string> items;
  const std::string open = "\"" + key + "\":[";
  const size_t at = line.find(open);
  if (at == std::string::npos) return items;
  const size_t end = line.find(']', at);
  std::string body = line.substr(at + open.size(), end - at - open.size());
  size_t start = 0;
  while (start <= body.size() && !body.empty()) {
    const size_t comma = body.find(',', start);
    std::string item = body.substr(start, comma == std::string::npos ? comma : comma - start);
    if (item.size() >= 2 && item.front() == '"') item = item.substr(1, item.size() - 2);
    items.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return items;
}

std::vector<double> Numbers(const std::string& line, const std::string& key) {
  std::vector<double> values;
  for (const std::string& item : ArrayItems(line, key)) {
    values.push_back(item == "null" ? std::nan("") : std::stod(item));
  }
  return values;
}

double StepOf(const std::string& line) {
  return std::stod(line.substr(line.find("\"step\":") + 7));
}

// Layer-stats records and the step lines' grad_norm, by step.
void ReadMetrics(const std::string& path, std::map<int, Record>* records,
                 std::map<int, double>* grad_norms) {
  std::ifstream in(path);
  ASSERT_TRUE(in) << path;
  std::string line;
  while (std::getline(in, line)) {
    const int step = static_cast<int>(StepOf(line));
    if (line.find("\"layer_stats\"") != std::string::npos) {
      Record r;
      r.layers = ArrayItems(line, "layers");
      r.grad_norm = Numbers(line, "grad_norm");
      r.update_ratio = Numbers(line, "update_ratio");
      r.residual_rms = Numbers(line, "residual_rms");
      (*records)[step] = r;
    } else if (line.find("\"grad_norm\":") != std::string::npos) {
      const size_t at = line.find("\"grad_norm\":") + 12;
      (*grad_norms)[step] = std::stod(line.substr(at));
    }
  }
}

std::string TempPath(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/layer_stats";
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/" + name;
  std::filesystem::remove(path);
  return path;
}

TEST(LayerStatsTest, OneProcessRecordsEveryLayerAtTheIntervalAndTrainsTheSame) {
  const std::string path = TempPath("single.jsonl");
  const auto r = RunPipetrain(std::string(kBase) + "--set layer_stats_interval=3 --metrics " + path);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::map<int, Record> records;
  std::map<int, double> grad_norms;
  ReadMetrics(path, &records, &grad_norms);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_TRUE(records.count(3) && records.count(6));
  const std::vector<std::string> expected = {
      "embed",     "encoder.0", "encoder.1", "encoder.2", "encoder.3",
      "decoder.0", "decoder.1", "decoder.2", "decoder.3"};
  for (const auto& [step, rec] : records) {
    SCOPED_TRACE(step);
    EXPECT_EQ(rec.layers, expected);
    ASSERT_EQ(rec.grad_norm.size(), rec.layers.size());
    ASSERT_EQ(rec.update_ratio.size(), rec.layers.size());
    ASSERT_EQ(rec.residual_rms.size(), rec.layers.size());
    double squares = 0;
    for (size_t i = 0; i < rec.layers.size(); ++i) {
      EXPECT_TRUE(std::isfinite(rec.grad_norm[i]) && rec.grad_norm[i] > 0) << rec.layers[i];
      squares += rec.grad_norm[i] * rec.grad_norm[i];
      EXPECT_TRUE(std::isfinite(rec.update_ratio[i]) && rec.update_ratio[i] > 0) << rec.layers[i];
      if (rec.layers[i] == "embed") {
        EXPECT_TRUE(std::isnan(rec.residual_rms[i]));  // written as null
      } else {
        EXPECT_TRUE(std::isfinite(rec.residual_rms[i]) && rec.residual_rms[i] > 0)
            << rec.layers[i];
      }
    }
    ASSERT_TRUE(grad_norms.count(step));
    const double total = grad_norms[step] * grad_norms[step];
    EXPECT_NEAR(squares, total, 1e-9 * total);
  }
  // The statistics only read: the same parameters as a run without them.
  const auto plain = RunPipetrain(kBase);
  ASSERT_EQ(plain.exit_code, 0) << plain.output;
  EXPECT_EQ(testing::CheckedFinalDigest(r.output), testing::CheckedFinalDigest(plain.output));
}

TEST(LayerStatsTest, InvalidIntervalIsRefused) {
  const auto r = RunPipetrain(std::string(kBase) + "--set layer_stats_interval=-1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, ::testing::HasSubstr("layer_stats_interval"));
}

TEST(LayerStatsTest, TwoStagePipelineReportsTheOneProcessGradientNorms) {
  const std::string single_path = TempPath("pp1.jsonl");
  const std::string pipe_path = TempPath("pp2.jsonl");
  const std::string args = std::string(kBase) + "--set layer_stats_interval=2 ";
  const auto single = RunPipetrain(args + "--metrics " + single_path);
  ASSERT_EQ(single.exit_code, 0) << single.output;
  const auto pipe = testing::RunCommand(Launcher(2) + PIPETRAIN_BINARY + " " + args +
                                        "--set pipeline.stages=2 --metrics " + pipe_path);
  ASSERT_EQ(pipe.exit_code, 0) << pipe.output;
  EXPECT_EQ(testing::CheckedFinalDigest(single.output), testing::CheckedFinalDigest(pipe.output));
  std::map<int, Record> a, b;
  std::map<int, double> ga, gb;
  ReadMetrics(single_path, &a, &ga);
  ReadMetrics(pipe_path, &b, &gb);
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(b.size(), 3u);
  for (const auto& [step, rec] : a) {
    SCOPED_TRACE(step);
    ASSERT_TRUE(b.count(step));
    const Record& other = b.at(step);
    EXPECT_EQ(other.layers, rec.layers);
    ASSERT_EQ(other.grad_norm.size(), rec.grad_norm.size());
    for (size_t i = 0; i < rec.grad_norm.size(); ++i) {
      EXPECT_NEAR(other.grad_norm[i], rec.grad_norm[i], 1e-12 * rec.grad_norm[i]) << rec.layers[i];
      EXPECT_NEAR(other.update_ratio[i], rec.update_ratio[i], 1e-12 * rec.update_ratio[i])
          << rec.layers[i];
      if (std::isfinite(rec.residual_rms[i])) {
        EXPECT_NEAR(other.residual_rms[i], rec.residual_rms[i], 1e-12 * rec.residual_rms[i])
            << rec.layers[i];
      }
    }
  }
}

}  // namespace
}  // namespace pipetrain
