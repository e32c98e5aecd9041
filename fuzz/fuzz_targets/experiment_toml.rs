//! Experiment files: any text is `Ok` or an `Err`, never a panic or an abort; what is
//! accepted reads back from its JSON (as checkpoints and summaries store it) as the same
//! experiment.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use localprop_cli::config::Experiment;

fuzz_target!(|data: &[u8]| {
    // A small budget: a file that asks for a huge network is refused by the budget check,
    // before the allocator could abort the process.
    localprop_cli::budget::set_max_memory(64 << 20);
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(exp) = Experiment::from_toml(text, "fuzz.toml", Path::new("/nonexistent")) {
        let again =
            Experiment::from_json(&exp.to_json(), "fuzz.json").expect("the JSON of an accepted file is refused");
        assert_eq!(again, exp, "the JSON of an accepted file reads back otherwise");
    }
});
