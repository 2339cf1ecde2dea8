// backprop/optim.hpp — optimisers (SGD, Adam, AdamW, RMSprop, Rprop), gradient clipping and learning-rate
// schedules. See docs/optim.md for each update rule.
//
// Example:
//   #include <backprop/optim.hpp>
//   bp::optim::SGD opt(net.parameters(), {.lr = 0.1, .momentum = 0.9, .weight_decay = 1e-4});
//   bp::optim::StepLR sched(opt, 10, 0.5);
//   opt.zero_grad(); loss.backward(); opt.step();   // per mini-batch
//   sched.step();                                   // per epoch
#pragma once

#include <backprop/optim/optimizer.hpp>
#include <backprop/optim/optimizers.hpp>
#include <backprop/optim/schedule.hpp>
