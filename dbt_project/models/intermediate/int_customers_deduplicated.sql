{#- One row per customer. When an id repeats, the declared order (deduplicate.latest_first)
    says which record is the latest; the row further down the file breaks ties, as exports
    append newer records. Each attribute comes from the latest record that has it, so a gap
    in the latest record is filled, not imputed. -#}
{%- set decl = declaration() -%}
{%- set columns = kept_columns() -%}

with

usable_rows as (

    select * from {{ ref('int_customers_validated') }}
    where quarantine_reason is null

),

ranked as (

    select
        *,
        row_number() over (
            partition by customer_id
            order by
                {%- for item in decl.latest_first %}
                {{ item.name }} {{ item.order }} nulls last,
                {%- endfor %}
                source_row_number desc
        ) as recency_rank

    from usable_rows

),

merged as (

    -- min_by skips a record whose value is missing: its ordering value is NULL then
    select
        customer_id,
        {%- for column in columns %}
        min_by({{ column.name }}, case when {{ column.name }} is not null then recency_rank end) as {{ column.name }},
        {%- endfor %}
        min_by(source_row_number, recency_rank) as source_row_number,
        count(*) as records_merged

    from ranked
    group by customer_id

)

select * from merged
