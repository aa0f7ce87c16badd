/* SPDX-License-Identifier: Apache-2.0 */
/* placeholder: implemented by the layer work */
#include "layer/compress.h"
