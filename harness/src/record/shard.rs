//! `--shard K/N`: run every N-th item starting at the K-th (1-based), so N machines (a
//! Slurm job array) split a study and `gapbench merge` joins their outputs.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// 1-based index of this shard.
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Does item number `i` (0-based, in canonical item order) belong to this shard?
    pub fn owns(&self, i: usize) -> bool {
        i % self.count == self.index - 1
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |m: &str| Error::input(format!("--shard {s}"), m.to_string());
        let (k, n) = s.split_once('/').ok_or_else(|| bad("expected K/N, e.g. 2/8"))?;
        let index: usize = k.trim().parse().map_err(|_| bad("K is not a number"))?;
        let count: usize = n.trim().parse().map_err(|_| bad("N is not a number"))?;
        if count == 0 || index == 0 || index > count {
            return Err(bad("need 1 <= K <= N"));
        }
        Ok(Shard { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_items() {
        let n = 3;
        for i in 0..10 {
            let owners = (1..=n).filter(|&k| Shard { index: k, count: n }.owns(i)).count();
            assert_eq!(owners, 1);
        }
        assert!("0/3".parse::<Shard>().is_err());
        assert!("4/3".parse::<Shard>().is_err());
        assert_eq!("2/3".parse::<Shard>().unwrap(), Shard { index: 2, count: 3 });
    }
}
