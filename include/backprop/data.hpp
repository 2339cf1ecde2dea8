// backprop/data.hpp — getting examples into tensors: readers (IDX, CSV), datasets, loaders, splits, scaling
//
// Example:
//   #include <backprop/data.hpp>
//   namespace bpd = backprop::data;
//   auto all = bpd::FashionMNIST::load(bpd::FashionMNIST::default_dir, bpd::Split::train);
//   auto [train, valid] = bpd::train_validation_split(all, 0.1, /*seed=*/1);
//   bpd::DataLoader loader(train, {.batch_size = 128, .seed = 1});
//   for (const bpd::Batch& b : loader) { /* b.features [128, 1, 28, 28], b.targets [128] */ }
//
// See docs/data.md for the file formats, the validation rules and the loader's determinism.
#pragma once

#include <backprop/data/augment.hpp>
#include <backprop/data/csv.hpp>
#include <backprop/data/dataset.hpp>
#include <backprop/data/idx.hpp>
#include <backprop/data/loader.hpp>
#include <backprop/data/standardize.hpp>
