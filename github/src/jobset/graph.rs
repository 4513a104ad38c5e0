//! The dependency graph of a job set, by index: cycle finding (for the
//! error) and a deterministic topological order (for submission and for
//! `ok: N jobs (…)`). Kept free of job types so it is easy to test.

use std::collections::BTreeSet;

/// `deps[i]` holds the nodes node `i` waits for.
pub(crate) struct Graph {
    deps: Vec<Vec<usize>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    New,
    OnPath,
    Done,
}

impl Graph {
    /// A graph over `deps.len()` nodes; lists are visited in the given order.
    pub fn new(deps: Vec<Vec<usize>>) -> Self {
        Graph { deps }
    }

    /// Circles of waiting, each starting at its lowest node and ending where
    /// it began (`[a, b, a]`). At least one is found in every tangle; not
    /// every circle through a tangle is listed.
    pub fn cycles(&self) -> Vec<Vec<usize>> {
        let mut marks = vec![Mark::New; self.deps.len()];
        let mut found = BTreeSet::new();
        let mut path = Vec::new();
        for start in 0..self.deps.len() {
            self.visit(start, &mut marks, &mut path, &mut found);
        }
        found.into_iter().collect()
    }

    fn visit(&self, node: usize, marks: &mut [Mark], path: &mut Vec<usize>, found: &mut BTreeSet<Vec<usize>>) {
        match marks[node] {
            Mark::Done => return,
            Mark::OnPath => {
                let from = path.iter().position(|&n| n == node).unwrap_or(0);
                let mut cycle = path[from..].to_vec();
                let lowest = cycle.iter().enumerate().min_by_key(|(_, &n)| n).map_or(0, |(i, _)| i);
                cycle.rotate_left(lowest);
                cycle.push(cycle[0]);
                found.insert(cycle);
                return;
            }
            Mark::New => {}
        }
        marks[node] = Mark::OnPath;
        path.push(node);
        for &dep in &self.deps[node] {
            self.visit(dep, marks, path, found);
        }
        path.pop();
        marks[node] = Mark::Done;
    }

    /// Every node after the nodes it waits for; among nodes that are ready
    /// together, the lower index first. `None` if there is a cycle.
    pub fn topological_order(&self) -> Option<Vec<usize>> {
        let n = self.deps.len();
        let mut waiting: Vec<usize> = self.deps.iter().map(|d| d.iter().collect::<BTreeSet<_>>().len()).collect();
        let mut dependants = vec![Vec::new(); n];
        for (node, deps) in self.deps.iter().enumerate() {
            for &dep in deps.iter().collect::<BTreeSet<_>>() {
                dependants[dep].push(node);
            }
        }
        let mut ready: BTreeSet<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(node) = ready.pop_first() {
            order.push(node);
            for &d in &dependants[node] {
                waiting[d] -= 1;
                if waiting[d] == 0 {
                    ready.insert(d);
                }
            }
        }
        (order.len() == n).then_some(order)
    }
}

#[cfg(test)]
mod tests {
    use super::Graph;

    #[test]
    fn order_puts_dependencies_first() {
        // 0 waits for 2, 1 waits for 0 and 2, 3 stands alone.
        let g = Graph::new(vec![vec![2], vec![0, 2], vec![], vec![]]);
        assert_eq!(g.topological_order(), Some(vec![2, 0, 1, 3]));
        assert!(g.cycles().is_empty());
    }

    #[test]
    fn diamond_is_not_a_cycle() {
        let g = Graph::new(vec![vec![], vec![0], vec![0, 1], vec![1, 2, 2]]);
        assert!(g.cycles().is_empty());
        assert_eq!(g.topological_order(), Some(vec![0, 1, 2, 3]));
    }

    #[test]
    fn cycles_are_found_and_rotated() {
        let g = Graph::new(vec![vec![1], vec![2], vec![0], vec![3]]);
        assert_eq!(g.cycles(), vec![vec![0, 1, 2, 0], vec![3, 3]]);
        assert_eq!(g.topological_order(), None);
        let g = Graph::new(vec![vec![], vec![2], vec![1]]);
        assert_eq!(g.cycles(), vec![vec![1, 2, 1]]);
    }
}
