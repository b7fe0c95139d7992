{#- Every profiled feature in one long table, so that "what sets a segment apart" is a
    ranking over rows, whatever the declaration: numbers give the segment's mean, yes/no
    columns the share of yes, categories the share of each level; each beside the base's
    value, the lift and the standardised difference. Aggregates first, so it stays cheap
    at millions of rows. -#}
{%- set profiled = mart_columns() | rejectattr('role', 'equalto', 'label') | list -%}
{%- set means = [] -%}
{%- set shares = [] -%}
{%- set levels = [] -%}
{%- for column in profiled -%}
    {%- if column.type in ('number', 'integer') -%}{%- do means.append(column.name) -%}
    {%- elif column.type == 'boolean' -%}{%- do shares.append(column.name) -%}
    {%- else -%}{%- do levels.append(column.name) -%}
    {%- endif -%}
    {%- if column.ordered -%}{%- do means.append(column.name ~ '_level') -%}{%- endif -%}
{%- endfor -%}

with

customers as (

    select * from {{ ref('customer_segments') }}

),

segment_sizes as (

    select segment_id, count(*) as customers
    from customers
    group by segment_id

),

base_size as (

    select sum(customers) as customers
    from segment_sizes

),

totals as (

    -- per segment: the sum (and sum of squares) of each number, the count of each yes and level
    {%- for name in means %}
    select
        segment_id, {{ sql_string(name) }} as feature, cast(null as {{ dbt.type_string() }}) as level, 'mean' as kind,
        sum(cast({{ name }} as double)) as total, sum(cast({{ name }} as double) * cast({{ name }} as double)) as total_sq
    from customers
    group by segment_id
    union all
    {%- endfor %}
    {%- for name in shares %}
    select
        segment_id, {{ sql_string(name) }}, cast(null as {{ dbt.type_string() }}), 'share',
        sum(case when {{ name }} then 1.0 else 0.0 end), sum(case when {{ name }} then 1.0 else 0.0 end)
    from customers
    group by segment_id
    union all
    {%- endfor %}
    {%- for name in levels %}
    select
        segment_id, {{ sql_string(name) }}, cast({{ name }} as {{ dbt.type_string() }}), 'share',
        cast(count(*) as double), cast(count(*) as double)
    from customers
    group by segment_id, {{ name }}
    union all
    {%- endfor %}
    select segment_id, 'none', cast(null as {{ dbt.type_string() }}), 'mean', 0.0, 0.0
    from segment_sizes
    where false

),

all_levels as (

    -- every segment gets every level, so a level absent from a segment shows as 0 %
    select segment_sizes.segment_id, levels.feature, levels.level, levels.kind
    from segment_sizes
    cross join (select distinct feature, level, kind from totals) as levels

),

complete as (

    select
        all_levels.segment_id,
        all_levels.feature,
        all_levels.level,
        all_levels.kind,
        coalesce(totals.total, 0) as total,
        coalesce(totals.total_sq, 0) as total_sq

    from all_levels
    left join totals
        on all_levels.segment_id = totals.segment_id
        and all_levels.feature = totals.feature
        and coalesce(all_levels.level, '') = coalesce(totals.level, '')

),

base_values as (

    select
        complete.feature,
        complete.level,
        sum(complete.total) / max(base_size.customers) as base_value,
        sum(complete.total_sq) / max(base_size.customers) as base_mean_sq

    from complete
    cross join base_size
    group by complete.feature, complete.level

),

spreads as (

    select
        feature,
        level,
        base_value,
        -- population standard deviation; for a share p, sqrt(p (1 - p))
        sqrt(greatest(base_mean_sq - base_value * base_value, 0)) as base_sd

    from base_values

),

final as (

    select
        cast(complete.segment_id as integer) as segment_id,
        complete.feature,
        complete.level,
        complete.kind,
        cast(segment_sizes.customers as bigint) as segment_customers,
        complete.total / segment_sizes.customers as segment_value,
        spreads.base_value,
        spreads.base_sd,
        complete.total / segment_sizes.customers / nullif(spreads.base_value, 0) as lift,
        (complete.total / segment_sizes.customers - spreads.base_value) / nullif(spreads.base_sd, 0) as std_diff

    from complete
    inner join segment_sizes
        on complete.segment_id = segment_sizes.segment_id
    inner join spreads
        on complete.feature = spreads.feature
        and coalesce(complete.level, '') = coalesce(spreads.level, '')

)

select * from final
