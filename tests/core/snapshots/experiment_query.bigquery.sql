WITH xp_exposures AS (
  SELECT
    unit_id AS unit_id,
    CASE CAST(variant AS STRING)
      WHEN 'control'
      THEN 0
      WHEN 'one_click'
      THEN 1
      WHEN 'recommendations'
      THEN 2
    END AS variant,
    exposed_at AS exposed_at,
    CAST(device AS STRING) AS dim0,
    CAST(country AS STRING) AS dim1
  FROM exposures
  WHERE
    CAST(variant AS STRING) IN ('control', 'one_click', 'recommendations')
    AND exposed_at >= CAST('2024-03-02 00:00:00.000000' AS TIMESTAMP)
    AND exposed_at < CAST('2024-03-10 12:30:00.000000' AS TIMESTAMP)
), xp_units AS (
  SELECT
    unit_id,
    CASE WHEN MIN(variant) = MAX(variant) THEN MIN(variant) END AS variant,
    MIN(exposed_at) AS first_exposure,
    MIN(dim0) AS dim0,
    MIN(dim1) AS dim1
  FROM xp_exposures
  GROUP BY
    unit_id
), xp_src0 AS (
  SELECT
    u.unit_id,
    COUNT(CASE WHEN e.event_ts >= u.first_exposure THEN 1 END) AS a0,
    COUNT(CASE WHEN e.event_ts < u.first_exposure THEN 1 END) AS a1,
    SUM(CASE WHEN e.event_ts >= u.first_exposure THEN e.x0 END) AS a2,
    SUM(CASE WHEN e.event_ts < u.first_exposure THEN e.x0 END) AS a3
  FROM (
    SELECT
      unit_id,
      first_exposure,
      first_exposure - INTERVAL '40320' MINUTE AS join_from,
      first_exposure + INTERVAL '10080' MINUTE AS join_to
    FROM xp_units
    WHERE
      NOT variant IS NULL
  ) AS u
  INNER JOIN (
    SELECT
      unit_id AS unit_id,
      ordered_at AS event_ts,
      CAST(revenue AS FLOAT64) AS x0
    FROM orders
    WHERE
      ordered_at >= CAST('2024-02-03 00:00:00.000000' AS TIMESTAMP)
      AND ordered_at < CAST('2024-03-10 12:30:00.000000' AS TIMESTAMP)
  ) AS e
    ON e.unit_id = u.unit_id
    AND e.event_ts >= u.join_from
    AND e.event_ts < u.join_to
    AND e.event_ts < CAST('2024-03-10 12:30:00.000000' AS TIMESTAMP)
  GROUP BY
    u.unit_id
), xp_src1 AS (
  SELECT
    u.unit_id,
    COUNT(*) AS a0,
    SUM(e.x0) AS a1
  FROM (
    SELECT
      unit_id,
      first_exposure,
      first_exposure + INTERVAL '10080' MINUTE AS join_to
    FROM xp_units
    WHERE
      NOT variant IS NULL
  ) AS u
  INNER JOIN (
    SELECT
      unit_id AS unit_id,
      started_at AS event_ts,
      CAST(latency_ms AS FLOAT64) AS x0
    FROM sessions
    WHERE
      started_at >= CAST('2024-03-02 00:00:00.000000' AS TIMESTAMP)
      AND started_at < CAST('2024-03-10 12:30:00.000000' AS TIMESTAMP)
  ) AS e
    ON e.unit_id = u.unit_id
    AND e.event_ts >= u.first_exposure
    AND e.event_ts < u.join_to
    AND e.event_ts < CAST('2024-03-10 12:30:00.000000' AS TIMESTAMP)
  GROUP BY
    u.unit_id
), xp_src2 AS (
  SELECT
    u.unit_id,
    SUM(e.x0) AS a0
  FROM (
    SELECT
      unit_id,
      first_exposure,
      first_exposure + INTERVAL '20160' MINUTE AS join_to
    FROM xp_units
    WHERE
      NOT variant IS NULL
  ) AS u
  INNER JOIN (
    SELECT
      unit_id AS unit_id,
      refunded_at AS event_ts,
      CAST(amount AS FLOAT64) AS x0
    FROM (
      SELECT
        unit_id,
        refunded_at,
        amount
      FROM refunds
      WHERE
        amount > 0
    ) AS q
    WHERE
      refunded_at >= CAST('2024-03-02 00:00:00.000000' AS TIMESTAMP)
      AND refunded_at < CAST('2024-03-10 12:30:00.000000' AS TIMESTAMP)
  ) AS e
    ON e.unit_id = u.unit_id
    AND e.event_ts >= u.first_exposure
    AND e.event_ts < u.join_to
    AND e.event_ts < CAST('2024-03-10 12:30:00.000000' AS TIMESTAMP)
  GROUP BY
    u.unit_id
), xp_unit_values AS (
  SELECT
    u.variant,
    CAST(u.first_exposure AS DATE) AS exposure_day,
    u.dim0,
    u.dim1,
    CASE WHEN s0.a0 > 0 THEN 1 ELSE 0 END AS v0,
    CASE WHEN s0.a1 > 0 THEN 1 ELSE 0 END AS v1,
    COALESCE(s0.a2, 0) AS v2,
    COALESCE(s0.a3, 0) AS v3,
    CAST(COALESCE(s0.a0, 0) AS FLOAT64) AS v4,
    CAST(COALESCE(s1.a0, 0) AS FLOAT64) AS v5,
    COALESCE(s1.a1, 0) AS v6,
    COALESCE(s2.a0, 0) AS v7
  FROM xp_units AS u
  LEFT JOIN xp_src0 AS s0
    ON s0.unit_id = u.unit_id
  LEFT JOIN xp_src1 AS s1
    ON s1.unit_id = u.unit_id
  LEFT JOIN xp_src2 AS s2
    ON s2.unit_id = u.unit_id
), xp_caps AS (
  SELECT
    MAX(cap1) AS cap1
  FROM (
    SELECT
      PERCENTILE_CONT(v2, 0.99) OVER () AS cap1
    FROM xp_unit_values
    WHERE
      NOT variant IS NULL
  ) AS w
), xp_cells AS (
  SELECT
    CASE v.variant
      WHEN 0
      THEN 'control'
      WHEN 1
      THEN 'one_click'
      WHEN 2
      THEN 'recommendations'
    END AS variant,
    v.exposure_day,
    v.dim0,
    v.dim1,
    COUNT(*) AS units,
    SUM(v.v0) AS m0_sum,
    SUM(v.v0 * v.v0) AS m0_sum_squares,
    SUM(v.v1) AS m0_covariate_sum,
    SUM(v.v1 * v.v1) AS m0_covariate_sum_squares,
    SUM(v.v0 * v.v1) AS m0_sum_product_covariate,
    SUM(LEAST(v.v2, c.cap1)) AS m1_sum,
    SUM(LEAST(v.v2, c.cap1) * LEAST(v.v2, c.cap1)) AS m1_sum_squares,
    SUM(LEAST(v.v3, c.cap1)) AS m1_covariate_sum,
    SUM(LEAST(v.v3, c.cap1) * LEAST(v.v3, c.cap1)) AS m1_covariate_sum_squares,
    SUM(LEAST(v.v2, c.cap1) * LEAST(v.v3, c.cap1)) AS m1_sum_product_covariate,
    SUM(v.v2) AS m2_sum,
    SUM(v.v2 * v.v2) AS m2_sum_squares,
    SUM(v.v4) AS m2_denominator_sum,
    SUM(v.v4 * v.v4) AS m2_denominator_sum_squares,
    SUM(v.v2 * v.v4) AS m2_sum_product_denominator,
    SUM(v.v5) AS m3_sum,
    SUM(v.v5 * v.v5) AS m3_sum_squares,
    SUM(v.v6) AS m4_sum,
    SUM(v.v6 * v.v6) AS m4_sum_squares,
    SUM(v.v5) AS m4_denominator_sum,
    SUM(v.v5 * v.v5) AS m4_denominator_sum_squares,
    SUM(v.v6 * v.v5) AS m4_sum_product_denominator,
    SUM(LEAST(v.v7, 500.0)) AS m5_sum,
    SUM(LEAST(v.v7, 500.0) * LEAST(v.v7, 500.0)) AS m5_sum_squares
  FROM xp_unit_values AS v
  CROSS JOIN xp_caps AS c
  GROUP BY
    v.variant,
    v.exposure_day,
    v.dim0,
    v.dim1
)
SELECT
  g.variant,
  g.exposure_day,
  g.dim0,
  g.dim1,
  GROUPING(g.exposure_day) AS g_day,
  GROUPING(g.dim0) AS g_dim0,
  GROUPING(g.dim1) AS g_dim1,
  SUM(g.units) AS units,
  SUM(g.m0_sum) AS m0_sum,
  SUM(g.m0_sum_squares) AS m0_sum_squares,
  SUM(g.m0_covariate_sum) AS m0_covariate_sum,
  SUM(g.m0_covariate_sum_squares) AS m0_covariate_sum_squares,
  SUM(g.m0_sum_product_covariate) AS m0_sum_product_covariate,
  SUM(g.m1_sum) AS m1_sum,
  SUM(g.m1_sum_squares) AS m1_sum_squares,
  SUM(g.m1_covariate_sum) AS m1_covariate_sum,
  SUM(g.m1_covariate_sum_squares) AS m1_covariate_sum_squares,
  SUM(g.m1_sum_product_covariate) AS m1_sum_product_covariate,
  SUM(g.m2_sum) AS m2_sum,
  SUM(g.m2_sum_squares) AS m2_sum_squares,
  SUM(g.m2_denominator_sum) AS m2_denominator_sum,
  SUM(g.m2_denominator_sum_squares) AS m2_denominator_sum_squares,
  SUM(g.m2_sum_product_denominator) AS m2_sum_product_denominator,
  SUM(g.m3_sum) AS m3_sum,
  SUM(g.m3_sum_squares) AS m3_sum_squares,
  SUM(g.m4_sum) AS m4_sum,
  SUM(g.m4_sum_squares) AS m4_sum_squares,
  SUM(g.m4_denominator_sum) AS m4_denominator_sum,
  SUM(g.m4_denominator_sum_squares) AS m4_denominator_sum_squares,
  SUM(g.m4_sum_product_denominator) AS m4_sum_product_denominator,
  SUM(g.m5_sum) AS m5_sum,
  SUM(g.m5_sum_squares) AS m5_sum_squares
FROM xp_cells AS g
GROUP BY
  GROUPING SETS (
    (g.variant),
    (g.variant, g.exposure_day),
    (g.variant, g.dim0),
    (g.variant, g.dim1)
  )
