/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Evidence providers (docs/attestation.md). A provider reads the `evidence'
 * object of POST /v1/attest, checks that it is genuine and that it carries
 * the report data the CAS expects, and gives the measurement. Only `sim'
 * exists: software evidence with no root of trust, accepted only by policies
 * in sim mode. A hardware provider (SGX DCAP quotes, TDX quotes, SEV-SNP
 * reports through configfs-tsm) is one more entry in the table: verify the
 * quote's signature chain and TCB, compare its REPORTDATA with report_data,
 * and give its measurement (MRENCLAVE, MRTD/RTMR or the SNP MEASUREMENT as
 * the policy names it).
 */
#include <string.h>

#include <openssl/crypto.h>

#include "cas-server.h"
#include "core/json-util.h"
#include "policy/policy-internal.h"

static int sim_verify(json_t *evidence, const uint8_t report_data[SC_CAS_REPORT_DATA_BYTES],
                      char ret_measurement[SC_POLICY_HASH_HEX + 1], sconify_error_t *err)
{
	const char *measurement = NULL, *rd = NULL;
	if (sc_json_get_string(evidence, "measurement", false, "evidence", &measurement, err) < 0 ||
	    sc_json_get_string(evidence, "report_data", false, "evidence", &rd, err) < 0)
		return -1;
	if (strlen(measurement) != SC_POLICY_HASH_HEX ||
	    !sc_policy_lower_hex(measurement, SC_POLICY_HASH_HEX))
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "evidence: measurement is not 64 lowercase hex digits");
	uint8_t got[SC_CAS_REPORT_DATA_BYTES];
	if (strlen(rd) != 2 * SC_CAS_REPORT_DATA_BYTES || !sc_policy_hex_decode(rd, strlen(rd), got))
		return sc_error(err, SCONIFY_ERR_INVALID, 0, "evidence: report_data is not 64 hex digits");
	if (CRYPTO_memcmp(got, report_data, sizeof(got)) != 0)
		return sc_error(err, SCONIFY_ERR_AUTH, 0,
		                "evidence: report_data does not bind the challenge and the public key");
	memcpy(ret_measurement, measurement, SC_POLICY_HASH_HEX + 1);
	return 0;
}

static const cas_provider providers[] = {
        {"sim", SC_POLICY_MODE_SIM, sim_verify},
};

const cas_provider *cas_provider_find(const char *name)
{
	for (size_t i = 0; i < sizeof(providers) / sizeof(providers[0]); i++)
		if (strcmp(providers[i].name, name) == 0)
			return &providers[i];
	return NULL;
}
