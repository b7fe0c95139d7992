{#- Every profiled feature in one long table, so that "what sets a segment apart" is
    a ranking over rows, whatever the features are. Numeric and yes/no features give
    one row per segment (mean, or share of yes); categorical features one row per
    segment and level (share). Aggregates first, so it stays cheap at millions of rows. -#}
{% set numeric_features = ['age', 'work_experience', 'family_size', 'spending_level', 'is_married', 'has_degree'] %}
{% set categorical_features = ['gender', 'profession', 'spending_score', 'var_1'] %}

with

customers as (

    select * from {{ ref('customer_segments') }}

),

segment_sizes as (

    select segment_id, count(*) as customers
    from customers
    group by segment_id

),

numeric_sums as (

    {% for feature in numeric_features %}
    select segment_id, '{{ feature }}' as feature, null::varchar as level, sum({{ feature }}::double) as total
    from customers
    group by segment_id
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

level_counts as (

    {% for feature in categorical_features %}
    select segment_id, '{{ feature }}' as feature, {{ feature }}::varchar as level, count(*)::double as total
    from customers
    group by segment_id, {{ feature }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

all_levels as (

    -- every segment gets every level, so a level absent from a segment shows as 0 %
    select segment_sizes.segment_id, levels.feature, levels.level
    from segment_sizes
    cross join (select distinct feature, level from level_counts) as levels

),

level_totals as (

    select
        all_levels.segment_id,
        all_levels.feature,
        all_levels.level,
        coalesce(level_counts.total, 0) as total

    from all_levels
    left join level_counts
        on all_levels.segment_id = level_counts.segment_id
        and all_levels.feature = level_counts.feature
        and all_levels.level = level_counts.level

),

totals as (

    select * from numeric_sums
    union all
    select * from level_totals

),

segment_values as (

    select
        totals.segment_id,
        totals.feature,
        totals.level,
        totals.total,
        totals.total / segment_sizes.customers as segment_value

    from totals
    inner join segment_sizes
        on totals.segment_id = segment_sizes.segment_id

),

base_values as (

    select
        feature,
        level,
        sum(total) / (select sum(customers) from segment_sizes) as base_value

    from totals
    group by feature, level

),

final as (

    select
        segment_values.segment_id,
        segment_values.feature,
        segment_values.level,
        segment_values.segment_value,
        base_values.base_value,
        segment_values.segment_value / nullif(base_values.base_value, 0) as lift

    from segment_values
    inner join base_values
        on segment_values.feature = base_values.feature
        and segment_values.level is not distinct from base_values.level

)

select * from final
