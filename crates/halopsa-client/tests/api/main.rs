//! Integration tests of the HaloPSA client: the wire against wiremock (token, refresh, 429,
//! secrets, exactly-once creates); the sink against halo-sim runs in `psa-contract`.

mod wire;
