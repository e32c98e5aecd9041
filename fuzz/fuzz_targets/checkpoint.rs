//! Checkpoints: any bytes are `Ok` or an `Err`, never a panic or an abort; what is accepted
//! is written again and reads back the same, and resuming from it (its configuration, then its
//! state for that configuration's network) is `Ok` or an `Err` too.

#![no_main]

use libfuzzer_sys::fuzz_target;
use localprop::checkpoint;
use localprop_cli::config::Experiment;

fuzz_target!(|data: &[u8]| {
    localprop_cli::budget::set_max_memory(64 << 20);
    let Ok(ckpt) = checkpoint::from_bytes(data, "fuzz") else { return };
    let again = checkpoint::to_bytes(&ckpt, "again").expect("an accepted checkpoint can be written again");
    let read = checkpoint::from_bytes(&again, "again").expect("a written checkpoint reads back");
    assert_eq!(read, ckpt, "a written checkpoint reads back otherwise");
    if let Ok(exp) = Experiment::from_json(&ckpt.config_json, "<checkpoint>")
        && let Ok(net) = exp.network()
    {
        let _ = ckpt.state_for(&net);
    }
});
