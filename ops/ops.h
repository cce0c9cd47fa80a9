// Every op family of evit in one include.
#pragma once
#include "ops/activation.h"
#include "ops/pointwise.h"
#include "ops/reduce.h"
#include "ops/shape.h"
