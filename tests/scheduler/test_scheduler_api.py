import bcai.scheduler


def test_public_names_are_pinned():
    assert set(bcai.scheduler.__all__) == {
        "ANY_NODE_TYPE", "DEFAULT_MAX_CONCURRENT_TASKS", "HEARTBEAT_TIMEOUT_S", "LEGACY_MAX_TASKS_ENV",
        "MAX_CONCURRENT_TASKS_ENV", "STRATEGIES", "AssignmentHistory", "AssignmentRow", "AssignmentStrategy",
        "BreakerState", "Candidate", "HealthScore", "InMemoryAssignmentHistory", "JobPolicy",
        "LatencyAwareStrategy", "LeastLoadedStrategy", "NodeCapabilities", "NodeRecord", "NodeView",
        "OnchainTelemetry", "Reputation", "RoundRobinStrategy", "SafetyPolicy", "Selection",
        "SqliteAssignmentHistory", "TelemetrySample", "Volunteer", "WeightedStrategy",
        "compute_admission_rejections", "compute_assignment", "compute_health", "compute_health_ppm",
        "compute_max_concurrent_tasks", "compute_onchain_telemetry", "compute_safety_violations", "get_strategy",
        "is_admissible", "is_healthy", "is_online", "is_within_policy", "process_sample", "select_nodes",
    }
    for name in bcai.scheduler.__all__:
        assert hasattr(bcai.scheduler, name)
