/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SC_LAYER_PATH_H
#define SC_LAYER_PATH_H
#endif
